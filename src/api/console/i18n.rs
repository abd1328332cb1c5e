//! The console's own words in English and Russian (the agent's choice). A task's script is in
//! the customer's language already; these are the labels around it.

/// (key, English, Russian)
const WORDS: &[(&str, &str, &str)] = &[
    ("app", "callahead console", "Консоль callahead"),
    ("login", "Log in", "Войти"),
    ("logout", "Log out", "Выйти"),
    ("token", "API token", "API-токен"),
    ("token_help", "Paste the token you were given. It is kept in a secure cookie for this browser only.", "Вставьте выданный вам токен. Он хранится только в этом браузере, в защищённой куке."),
    ("bad_token", "That token is not valid.", "Токен недействителен."),
    ("expired", "The login form expired or did not come from this site. Try again.", "Форма входа устарела или открыта не с этого сайта. Попробуйте ещё раз."),
    ("too_many", "Too many attempts from this address. Wait a minute.", "Слишком много попыток с этого адреса. Подождите минуту."),
    ("queue", "Queue", "Очередь"),
    ("queues", "Queues", "Очереди"),
    ("fraud", "Fraud", "Мошенничество"),
    ("care", "Care", "Забота о клиентах"),
    ("all", "All", "Все"),
    ("next", "Next task", "Следующая задача"),
    ("priority", "Priority", "Приоритет"),
    ("title", "Task", "Задача"),
    ("customer", "Customer", "Клиент"),
    ("segment", "Segment", "Сегмент"),
    ("money", "At risk", "Под угрозой"),
    ("due", "Due", "Срок"),
    ("holder", "Held by", "Взял"),
    ("status", "Status", "Статус"),
    ("filters", "Filters", "Фильтры"),
    ("overdue", "Overdue", "Просрочено"),
    ("mine", "Mine", "Мои"),
    ("apply", "Apply", "Применить"),
    ("nobody", "—", "—"),
    ("empty_queue", "Nothing waiting in this queue.", "В этой очереди ничего нет."),
    ("queue_empty", "No unclaimed task in that queue.", "В этой очереди нет свободных задач."),
    ("claim", "Claim", "Взять"),
    ("release", "Release", "Вернуть в очередь"),
    ("resolve", "Resolve", "Закрыть"),
    ("outcome", "Outcome", "Итог"),
    ("note", "Note", "Заметка"),
    ("add_note", "Add note", "Добавить заметку"),
    ("contact", "Log contact attempt", "Записать попытку связи"),
    ("channel", "Channel", "Канал"),
    ("result", "Result", "Результат"),
    ("snooze", "Snooze", "Отложить"),
    ("until", "Until", "До"),
    ("reason", "Reason", "Причина"),
    ("reassign", "Reassign", "Передать"),
    ("to", "To", "Кому"),
    ("reopen", "Reopen", "Открыть снова"),
    ("explanation", "What happened", "Что произошло"),
    ("who", "Who the customer is", "Кто клиент"),
    ("profile_unknown", "Profile not received yet: name, contact details and segment are unknown.", "Профиль ещё не получен: имя, контакты и сегмент неизвестны."),
    ("language", "Language", "Язык"),
    ("home", "Home", "Дом"),
    ("email", "E-mail", "Эл. почта"),
    ("phone", "Phone", "Телефон"),
    ("consent", "E-mail consent", "Согласие на письма"),
    ("yes", "yes", "да"),
    ("no", "no", "нет"),
    ("evidence", "Evidence", "Доказательства"),
    ("distance", "Distance", "Расстояние"),
    ("minutes_between", "Minutes between", "Минут между"),
    ("speed", "Speed needed", "Нужная скорость"),
    ("activity", "Weekly activity against the customer's normal", "Активность по неделям и обычный уровень клиента"),
    ("normal", "normal", "норма"),
    ("payment", "Payment against the customer's usual range", "Платёж и обычный диапазон клиента"),
    ("median", "median", "медиана"),
    ("usual_high", "usual high (p90)", "обычный максимум (p90)"),
    ("this_payment", "this payment", "этот платёж"),
    ("history", "Recent history", "Недавняя история"),
    ("tasks_of_customer", "All tasks of this customer (both queues)", "Все задачи клиента (обе очереди)"),
    ("script", "Script", "Сценарий разговора"),
    ("actions", "Suggested actions", "Рекомендуемые действия"),
    ("do", "Work on this task", "Работа с задачей"),
    ("audit", "Audit trail", "Журнал изменений"),
    ("when", "When", "Когда"),
    ("actor", "Who", "Кто"),
    ("action", "Action", "Действие"),
    ("attempts", "Contact attempts", "Попытки связи"),
    ("notes", "Notes", "Заметки"),
    ("supervisor", "Supervisor", "Руководитель"),
    ("open_tasks", "Open", "Открыто"),
    ("at_risk", "At risk of breaching SLA (due within 30 min)", "Под угрозой нарушения SLA (срок в течение 30 мин)"),
    ("held", "Who holds what", "Кто чем занят"),
    ("precision", "Precision per rule (confirmed ÷ resolved)", "Точность правил (подтверждено ÷ закрыто)"),
    ("rule", "Rule", "Правило"),
    ("resolved", "Resolved", "Закрыто"),
    ("confirmed", "Confirmed", "Подтверждено"),
    ("shortcuts", "Keyboard shortcuts", "Горячие клавиши"),
    ("sc_move", "move in the queue", "перемещение по очереди"),
    ("sc_open", "open the selected task", "открыть выбранную задачу"),
    ("sc_next", "take the next task", "взять следующую задачу"),
    ("sc_claim", "claim this task", "взять эту задачу"),
    ("sc_resolve", "resolve this task", "закрыть эту задачу"),
    ("sc_help", "show this help", "показать эту справку"),
    ("shortcuts_on", "Use single-key shortcuts (turn off if they get in the way, e.g. with speech input)", "Использовать клавиши из одного символа (отключите, если мешают, например при голосовом вводе)"),
    ("skip", "Skip to the content", "Перейти к содержимому"),
    ("close", "Close", "Закрыть"),
    ("back", "Back to the queue", "Назад к очереди"),
    ("forbidden", "This change was refused: the form is stale or did not come from this console. Reload the page and try again.", "Изменение отклонено: форма устарела или пришла не из консоли. Обновите страницу и попробуйте снова."),
    ("not_found", "No such task in your queues.", "В ваших очередях нет такой задачи."),
    ("done", "Done.", "Готово."),
    ("version", "Version", "Версия"),
    ("escalated", "escalated", "эскалировано"),
    ("snoozed", "snoozed until", "отложено до"),
    ("live", "Live: the queue refreshes by itself.", "Очередь обновляется автоматически."),
    ("procedure", "Procedure", "Процедура"),
    ("no_procedure", "No procedure for this complaint's category yet: the default one is shown. Tell the playbook owners.", "Для категории этой жалобы ещё нет процедуры: показана процедура по умолчанию. Сообщите владельцам регламента."),
    ("team", "Team", "Команда"),
    ("resolve_within", "Resolve within", "Решить в течение"),
    ("hours", "h", "ч"),
    ("compensation", "Compensation", "Компенсация"),
    ("up_to", "up to", "до"),
    ("steps", "Steps", "Шаги"),
    ("other_queue", "Also open for this customer in the other queue", "У клиента открыта задача и в другой очереди"),
];

/// The words of `lang` (`en` or `ru`) as a template value (`t.claim`, …).
pub fn words(lang: &str) -> minijinja::Value {
    let ru = lang == "ru";
    let map: std::collections::BTreeMap<&str, &str> =
        WORDS.iter().map(|(k, en, r)| (*k, if ru { *r } else { *en })).collect();
    minijinja::Value::from_serialize(&map)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_word_is_in_both_languages_and_keys_are_unique() {
        let mut keys: Vec<_> = WORDS.iter().map(|w| w.0).collect();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), WORDS.len(), "duplicate keys");
        // Names that are the same in both languages.
        let names = ["callahead", "API", "SLA", "p90"];
        for (k, en, ru) in WORDS {
            assert!(!en.is_empty() && !ru.is_empty(), "{k}");
            let rest = names.iter().fold(ru.to_string(), |text, name| text.replace(name, ""));
            assert!(
                !rest.chars().any(|c| c.is_ascii_alphabetic()),
                "English left in the Russian of {k}: {ru}"
            );
        }
    }
}
