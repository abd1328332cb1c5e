//! The engine ties state, rules and incidents together: `process(event) → task changes`.
//!
//! Pure: no async, no clock, no I/O. Time is event time: the engine's "now" is the newest event
//! time seen, less the allowed lateness (the watermark); event-time timers (a customer falling
//! silent) fire when the watermark passes them. Time is kept per input partition (as Kafka
//! Streams keeps stream time per task): a partition's timers fire by its own events only, so
//! replaying a partition from a checkpoint fires them at the same points, whichever instance
//! does it and whatever its other partitions are doing. The same engine runs in `serve`, `replay`,
//! `demo` and the benches.
//!
//! Concurrency: `process` takes `&self`. A customer's state is locked (its `DashMap` shard entry)
//! for the whole of one event, so events of one customer are applied one at a time; events of
//! different customers may be processed in parallel. Each partition has its own clock and timer
//! queue behind its own lock ([`PartitionTime`]), so workers on different partitions never wait
//! for each other; one worker processes a partition at a time, so that lock is uncontended. Lock
//! order: a partition's time, then a customer's entry; the partition's time is never locked while
//! the same thread holds a customer's entry.
//!
//! Expiry: a customer idle for [`EngineConfig::expire_after`] with nothing open is forgotten.
//! Whether a customer is idle is decided by its own partition's time only, and it is decided
//! where it matters, when the customer's next event or command arrives (an idle customer starts
//! afresh), so the engine's output never depends on when memory is reclaimed. Reclaiming is a
//! sweep of the whole map, once per day of event time (the first time any partition enters a
//! day), that forgets every idle customer of every partition: one pass a day, not one per
//! partition, which at a million customers is the difference between a few milliseconds of the
//! engine's time per day and most of it during a catch-up.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use crate::command::{Action, Command, CommandResult, Refusal};
use crate::detect::{
    absence, event_facts, sequence, DetectInput, DetectorKind, DetectorParams, Evidence, Phase, Signal,
};
use crate::event::{Event, EventBody, EventKind};
use crate::geo::Point;
use crate::incident::{self, Firing};
use crate::lifecycle;
use crate::rules::codes::CodeField;
use crate::rules::features::FeatureView;
use crate::rules::{Mode, RuleSet};
use crate::state::dedup::Seen;
use crate::state::{
    CustomerState, FastHash, SequenceMark, StateStore, MAX_PENDING_ABSENCES, MAX_SEQUENCE_MARKS,
};
use crate::task::{ChangeKind, Outcome, Task, TaskChange};
use crate::time::{Timestamp, DAY, MINUTE};
use crate::vocab::Queue;

/// Engine settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EngineConfig {
    /// How late an event may arrive (behind the newest seen) and still count before timers
    /// that it could have cancelled fire.
    pub allowed_lateness: i64,
    /// A customer with no event for this long (milliseconds of event time) and nothing open is
    /// forgotten (see [`Engine::expire_idle`]).
    pub expire_after: i64,
}

/// The default of [`EngineConfig::expire_after`]: longer than any baseline looks back.
pub const DEFAULT_EXPIRE_AFTER: i64 = 400 * DAY;

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig { allowed_lateness: 10 * MINUTE, expire_after: DEFAULT_EXPIRE_AFTER }
    }
}

/// A rule that fired (live or shadow), for counting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hit {
    /// Index of the rule in the rule set.
    pub rule: usize,
    pub shadow: bool,
}

/// What one event (and the timers it let fire) caused.
#[derive(Debug, Default)]
pub struct Processed {
    /// The event id was seen before for this customer: nothing was applied.
    pub duplicate: bool,
    pub hits: Vec<Hit>,
    pub changes: Vec<TaskChange>,
    /// Other customers whose state a timer changed, with their partition (for checkpoints).
    pub timer_touched: Vec<(i32, Box<str>)>,
    /// What became of the commands applied (see [`Engine::command`]).
    pub results: Vec<CommandResult>,
    /// Customers forgotten because they were idle (see [`Engine::expire_idle`]), with their
    /// partition. They are in `timer_touched` too, so the next checkpoint deletes their rows.
    pub expired: Vec<(i32, Box<str>)>,
    /// The event is older than the customer's de-duplication horizon (`state::dedup`): not
    /// applied, since a resend could not be told from a first delivery.
    pub stale: bool,
    /// The event's coded field (a contact's reason, a complaint's category) and whether the rule
    /// pack knows its code (see `rules::codes`); `None` for other events.
    pub code: Option<(CodeField, bool)>,
}

/// The alerting engine.
#[derive(Debug, Default)]
pub struct Engine {
    pub state: StateStore,
    config: EngineConfig,
    /// Each input partition's event time and timers, each behind its own lock. The outer lock
    /// is written only when a partition is first seen or released.
    partitions: RwLock<HashMap<i32, Arc<Mutex<PartitionTime>>, FastHash>>,
    /// Customers expired and not yet counted by [`Engine::take_expired_count`].
    expired_uncounted: AtomicU64,
    /// The newest day of event time (days since 1970-01-01) a sweep of idle customers has run
    /// for; 0 before the first.
    swept_day: AtomicI64,
}

/// One input partition's event time and its pending event-time timers.
#[derive(Debug)]
struct PartitionTime {
    /// Newest event time seen (milliseconds; `i64::MIN` before the first event).
    newest: i64,
    /// Pending timers: (when, customer). At most one live entry per customer; an entry whose
    /// time no longer matches the customer's `timer_at` is stale and skipped.
    timers: BTreeSet<(Timestamp, Box<str>)>,
}

impl Default for PartitionTime {
    fn default() -> Self {
        PartitionTime { newest: i64::MIN, timers: BTreeSet::new() }
    }
}

impl PartitionTime {
    /// The watermark: the newest event time less the allowed lateness.
    fn watermark(&self, allowed_lateness: i64) -> Timestamp {
        Timestamp(self.newest.saturating_sub(allowed_lateness))
    }

    /// Advances the newest event time (never backwards).
    fn advance(&mut self, ts: i64) {
        self.newest = self.newest.max(ts);
    }
}

impl Engine {
    /// A new engine with no state.
    pub fn new(config: EngineConfig) -> Engine {
        Engine { config, ..Engine::default() }
    }

    /// A partition's watermark: its newest event time less the allowed lateness.
    pub fn watermark(&self, partition: i32) -> Timestamp {
        Timestamp(self.newest(partition).saturating_sub(self.config.allowed_lateness))
    }

    /// A partition's newest event time (milliseconds; `i64::MIN` before its first event).
    pub fn newest(&self, partition: i32) -> i64 {
        let partitions = self.partitions.read().expect("partition map lock poisoned");
        partitions.get(&partition).map_or(i64::MIN, |time| lock(time).newest)
    }

    /// A partition's time and timers, created at its first use.
    fn partition_time(&self, partition: i32) -> Arc<Mutex<PartitionTime>> {
        if let Some(time) = self.partitions.read().expect("partition map lock poisoned").get(&partition) {
            return time.clone();
        }
        let mut partitions = self.partitions.write().expect("partition map lock poisoned");
        partitions.entry(partition).or_default().clone()
    }

    /// Number of pending event-time timers in all partitions (including stale entries).
    pub fn pending_timers(&self) -> usize {
        let partitions = self.partitions.read().expect("partition map lock poisoned");
        partitions.values().map(|time| lock(time).timers.len()).sum()
    }

    /// Processes one validated event: de-duplicates, runs the rules, updates state, opens or
    /// enriches tasks, then fires the timers the advancing event time makes due.
    pub fn process(&self, rules: &RuleSet, event: &Event) -> Processed {
        self.process_in(0, rules, event)
    }

    /// [`Engine::process`] for an event read from input partition `partition`, which owns the
    /// customer's state from then on.
    pub fn process_in(&self, partition: i32, rules: &RuleSet, event: &Event) -> Processed {
        let mut out = Processed::default();
        let time = self.partition_time(partition);
        let mut time = lock(&time);
        let before = time.watermark(self.config.allowed_lateness);
        let scheduled = {
            let customers = &self.state.customers;
            let mut entry = match customers.get_mut(event.customer_id.as_str()) {
                Some(mut e) => {
                    if self.is_expired(&e, before) {
                        // Idle long enough to have been swept: the same fresh start as if it had.
                        **e = CustomerState::default();
                        self.expired_uncounted.fetch_add(1, Ordering::Relaxed);
                    }
                    e
                }
                None => customers.entry(event.customer_id.as_str().into()).or_default(),
            };
            let state: &mut CustomerState = &mut entry;
            state.partition = partition;
            match state.seen_event(&event.event_id, event.ts) {
                Seen::New => {}
                Seen::Duplicate => {
                    out.duplicate = true;
                    return out;
                }
                // Older than the horizon: whether it was applied cannot be told; not applied.
                Seen::BeyondHorizon => {
                    out.stale = true;
                    return out;
                }
            }
            // A known alias becomes its code before anything counts or compares it.
            let (resolved, code) = rules.codes.resolve(event);
            out.code = code;
            let event = resolved.as_ref().unwrap_or(event);
            let on = rules.for_event(event.kind());
            let mut firings = Vec::new();
            evaluate(
                rules,
                on,
                Phase::BeforeApply,
                Some(event),
                event.ts,
                state,
                &mut firings,
                &mut out.hits,
            );
            match_sequences(rules, event, state, self.config.allowed_lateness, &mut firings, &mut out.hits);
            state.apply_late(event, &self.state.interner, self.config.allowed_lateness);
            evaluate(rules, on, Phase::AfterApply, Some(event), event.ts, state, &mut firings, &mut out.hits);
            track_absences(rules, event, state);
            if firings.iter().any(|f| f.rule.queue == Queue::Fraud) && customer_vouched(state, event) {
                firings.retain(|f| f.rule.queue != Queue::Fraud);
            }
            if !firings.is_empty() {
                out.changes = incident::open_or_enrich(firings, state, &event.customer_id, &rules.playbook);
            }
            schedule(rules, state, event.ts, event.kind())
        };
        if let Some(at) = scheduled {
            time.timers.insert((at, event.customer_id.as_str().into()));
        }
        time.advance(event.ts.0);
        self.fire_due_timers(&mut time, rules, &mut out);
        let day = time.watermark(self.config.allowed_lateness).day_number();
        drop(time);
        if day > before.day_number() && self.swept_day.fetch_max(day, Ordering::Relaxed) < day {
            for (partition, customer_id) in self.expire_idle() {
                out.timer_touched.push((partition, customer_id.clone()));
                out.expired.push((partition, customer_id));
            }
        }
        out
    }

    /// The cut-off of idleness at `now` (a partition's watermark): the start of `now`'s day
    /// less [`EngineConfig::expire_after`].
    fn idle_cutoff(&self, now: Timestamp) -> Timestamp {
        let day_start = Timestamp(now.day_number().saturating_mul(DAY));
        day_start.plus(self.config.expire_after.saturating_neg())
    }

    /// Whether a customer whose partition's watermark is `now` has been idle long enough to be
    /// forgotten (see [`CustomerState::is_idle_since`]); never before its partition's first
    /// event.
    fn is_expired(&self, state: &CustomerState, now: Timestamp) -> bool {
        now.0 > i64::MIN / 2 && state.is_idle_since(self.idle_cutoff(now), now)
    }

    /// Forgets every customer idle by its own partition's time: no event for
    /// [`EngineConfig::expire_after`] before the start of the partition's watermark's day, no
    /// open task and no wait running after that watermark (see [`CustomerState::is_idle_since`]);
    /// returns them (partition, id), sorted. A later event of one of them starts a new, empty
    /// state. Their tasks in the store are not touched. One pass over the map; partitions' times
    /// are read before it, so no partition lock is held while entries are.
    pub fn expire_idle(&self) -> Vec<(i32, Box<str>)> {
        let watermarks: HashMap<i32, Timestamp, FastHash> = {
            let partitions = self.partitions.read().expect("partition map lock poisoned");
            partitions
                .iter()
                .map(|(p, time)| (*p, lock(time).watermark(self.config.allowed_lateness)))
                .collect()
        };
        let mut expired = Vec::new();
        self.state.customers.retain(|id, state| {
            let expire = watermarks.get(&state.partition).is_some_and(|now| self.is_expired(state, *now));
            if expire {
                expired.push((state.partition, id.clone()));
            }
            !expire
        });
        self.expired_uncounted.fetch_add(expired.len() as u64, Ordering::Relaxed);
        expired.sort_unstable();
        expired
    }

    /// Customers expired since the last call (for the expiry counter).
    pub fn take_expired_count(&self) -> u64 {
        self.expired_uncounted.swap(0, Ordering::Relaxed)
    }

    /// Fires every timer of a partition (`time`, locked by the caller) at or before its
    /// watermark.
    fn fire_due_timers(&self, time: &mut PartitionTime, rules: &RuleSet, out: &mut Processed) {
        let watermark = time.watermark(self.config.allowed_lateness);
        while time.timers.first().is_some_and(|(at, _)| *at <= watermark) {
            let (at, customer_id) = time.timers.pop_first().expect("just seen");
            let Some(mut entry) = self.state.customers.get_mut(&customer_id) else { continue };
            let state: &mut CustomerState = &mut entry;
            if state.timer_at != Some(at) {
                continue; // stale: superseded by an earlier schedule
            }
            state.timer_at = None;
            out.timer_touched.push((state.partition, customer_id.clone()));
            let mut firings = Vec::new();
            fire_absences(rules, at, state, &mut firings, &mut out.hits);
            // Only the timer rules whose detector has something to judge now.
            let due: Vec<usize> = rules
                .for_timers()
                .iter()
                .copied()
                .filter(|&i| rules.rules[i].detector.as_ref().is_some_and(|d| d.timer_due(state, at)))
                .collect();
            if !due.is_empty() {
                evaluate(rules, &due, Phase::AfterApply, None, at, state, &mut firings, &mut out.hits);
            }
            if !firings.is_empty() {
                out.changes.extend(incident::open_or_enrich(firings, state, &customer_id, &rules.playbook));
            }
            if let Some(next) = next_due(rules, state, at).filter(|&next| next > at) {
                state.timer_at = Some(next);
                time.timers.insert((next, customer_id));
            }
        }
    }

    /// Installs restored customers of one partition: their state, their pending timers, and
    /// the partition's newest event time (its watermark resumes there).
    pub fn restore(
        &self,
        partition: i32,
        newest: i64,
        customers: impl IntoIterator<Item = (Box<str>, CustomerState)>,
    ) {
        let mut timers = Vec::new();
        for (id, mut state) in customers {
            state.partition = partition;
            if let Some(at) = state.timer_at {
                timers.push((at, id.clone()));
            }
            self.state.customers.insert(id, Box::new(state));
        }
        let time = self.partition_time(partition);
        let mut time = lock(&time);
        time.timers.extend(timers);
        time.advance(newest);
    }

    /// Forgets every customer of `partition` (handed to another instance), its timers and its
    /// time; returns how many customers.
    pub fn release(&self, partition: i32) -> usize {
        let before = self.state.customers.len();
        self.state.customers.retain(|_, s| s.partition != partition);
        self.partitions.write().expect("partition map lock poisoned").remove(&partition);
        before - self.state.customers.len()
    }

    /// Applies a command (an agent's action, a customer's answer, the SLA ticker) to a task of
    /// the customer, in order with the customer's events: the result, and the new task version
    /// if it changed. A command id already seen for this customer is a redelivery and is
    /// dropped (`duplicate`). Commands do not advance event time: no timer fires because of
    /// one. A resolution as `legitimate` teaches the customer's state (see [`learn`]).
    pub fn command(&self, partition: i32, command: &Command) -> Processed {
        let mut out = Processed::default();
        if command.action == Action::EraseCustomer {
            return self.erase(partition, command);
        }
        let now = self.watermark(partition);
        let customers = &self.state.customers;
        let entry = customers.get_mut(command.customer_id.as_str());
        // An idle customer not swept yet is as unknown as a swept one (see the module doc).
        let entry = entry.filter(|e| !self.is_expired(e, now));
        // A customer's "it was not me" is never lost: about a customer the engine no longer
        // knows, it starts a fresh state whose fraud task reaches a person.
        let reports = matches!(&command.action, Action::CustomerAnswer { answer } if answer == "no");
        let Some(mut entry) = entry.or_else(|| {
            reports.then(|| {
                let mut e = customers.entry(command.customer_id.as_str().into()).or_default();
                if self.is_expired(&e, now) {
                    **e = CustomerState::default();
                }
                e
            })
        }) else {
            out.results.push(CommandResult::refused(
                command,
                Refusal::NotFound,
                format!("customer {} is not known to the engine", command.customer_id),
            ));
            return out;
        };
        let state: &mut CustomerState = &mut entry;
        state.partition = partition;
        if state.has_seen(&command.command_id) {
            out.duplicate = true;
            return out;
        }
        state.remember_id(&command.command_id);
        state.no_timer_week = 0; // what the command teaches may change what needs a timer
        let mut incidents = state.incidents.take().map(|b| *b).unwrap_or_default();
        // What the task to reopen taught, to withdraw it once reopened.
        let reopening = matches!(command.action, Action::Reopen { .. })
            .then(|| incidents.resolved.iter().find(|t| t.id == command.task_id).cloned())
            .flatten();
        let applied = lifecycle::apply(&mut incidents, command);
        state.incidents = Some(Box::new(incidents));
        for change in applied.changes {
            match change.kind {
                ChangeKind::Resolved => learn(state, &change.task, command.at),
                ChangeKind::Reopened => {
                    if let Some(old) = &reopening {
                        unlearn(state, old);
                    }
                }
                _ => {}
            }
            out.changes.push(change);
        }
        out.results.push(applied.result);
        out
    }
}

impl Engine {
    /// Erases a customer: their state (and with it their incidents, marks and waits) leaves
    /// the map, and the change that tells the store to delete every stored trace of them at
    /// this point of the batch. Applied whether or not the engine knows them (their tasks may
    /// be in the store only); a redelivery erases again, which changes nothing. A later event
    /// of theirs starts afresh; a checkpoint taken after this holds nothing of them, and one
    /// taken before is followed by this command again on a restore (offsets are stored only up
    /// to a durable checkpoint).
    fn erase(&self, partition: i32, command: &Command) -> Processed {
        let mut out = Processed::default();
        let mut open = Vec::new();
        if let Some((id, state)) = self.state.customers.remove(command.customer_id.as_str()) {
            open = state
                .incidents
                .as_ref()
                .map(|i| i.open.iter().map(Task::summary).collect())
                .unwrap_or_default();
            out.expired.push((partition, id));
        }
        let actor = &command.actor;
        let mut erasure = TaskChange::erasure(
            &command.customer_id,
            &actor.name,
            actor.role.as_str(),
            &command.command_id,
            command.at,
        );
        erasure.task.context.earlier_tasks = open;
        out.changes.push(erasure);
        let mut result = CommandResult::applied(command, 0);
        result.customer_id = crate::task::erasure_key(&command.customer_id); // the id leaves with the rest
        out.results.push(result);
        out
    }
}

/// Locks a partition's time (a poisoned lock means a worker panicked mid-event: fatal).
fn lock(time: &Mutex<PartitionTime>) -> MutexGuard<'_, PartitionTime> {
    time.lock().expect("partition time lock poisoned")
}

/// The customer's timer, if one must be queued: the first of what its timer detectors ask for
/// (`DetectorParams::next_timer`: churn's silence deadline and re-evaluations, an income's
/// overdue point) and its absence deadlines, when none is pending. A pending timer re-computes
/// all of them when it fires, so it is only ever moved earlier here: by a new absence deadline,
/// or by what an event may bring earlier (`DetectorParams::earlier_timer`).
/// Sets `timer_at`; the caller queues the returned time in the partition's timers.
fn schedule(
    rules: &RuleSet,
    state: &mut CustomerState,
    now: Timestamp,
    kind: EventKind,
) -> Option<Timestamp> {
    let deadline = match state.timer_at {
        Some(pending) => {
            let earlier = timer_detectors(rules).filter_map(|d| d.earlier_timer(state, now));
            match state.absences.iter().map(|a| a.deadline).chain(earlier).min() {
                Some(first) if first < pending => first,
                _ => return None,
            }
        }
        None => {
            // Found unneeded this week by these rules, and nothing since could need one: not
            // asked again (the key changes with the week and with a rule reload; never 0).
            let week = now.0.div_euclid(7 * DAY) as u32;
            let key = (rules.fingerprint as u32 ^ week.wrapping_mul(0x9E37_79B9)) | 1;
            let may_need = |d: &DetectorParams| d.timer_inputs().contains(&kind);
            if state.no_timer_week == key
                && state.absences.is_empty()
                && !timer_detectors(rules).any(may_need)
            {
                return None;
            }
            match next_due(rules, state, now) {
                Some(due) => {
                    state.no_timer_week = 0;
                    due
                }
                None => {
                    state.no_timer_week = if state.absences.is_empty() { key } else { 0 };
                    return None;
                }
            }
        }
    };
    state.timer_at = Some(deadline);
    Some(deadline)
}

/// How long a trip resolved as legitimate stays known for the card.
pub const TRUSTED_TRIP_DAYS: i64 = 30;

/// The feedback loop: what a resolved task teaches the customer's state. `legitimate` makes the
/// trip's places known for the card (and its countries trusted), and a confirmed payment part
/// of the customer's normal; a care outcome is remembered.
pub fn learn(state: &mut CustomerState, task: &Task, at: Timestamp) {
    let Some(outcome) = task.outcome else { return };
    if task.queue == Queue::Care {
        state.learned.get_or_insert_with(Default::default).care_outcome = Some((at, outcome));
        // A complaint the agent solved: another in its category means the fix did not hold.
        if matches!(outcome, Outcome::ResolvedIssue | Outcome::Retained) {
            for category in task.signals.iter().filter_map(incident::recorded_category) {
                state.resolve_complaint(crate::state::hash_text(category), at);
            }
        }
        return;
    }
    if outcome == Outcome::ConfirmedFraud {
        // Fraud is not the customer's normal: forget its amounts and any pattern it started.
        for s in task.signals.iter().filter(|s| s.detector == Some(DetectorKind::AmountAnomaly)) {
            if let Some(amount) = s.facts.get("amount_eur").and_then(serde_json::Value::as_f64) {
                state.peaks.forget_at_least(amount);
            }
        }
        let fraud_times: Vec<Timestamp> = task.context.events.iter().map(|e| e.at).collect();
        state.flows.retain(|f| !(f.kind == crate::state::FlowKind::Card && fraud_times.contains(&f.last_at)));
        return;
    }
    if outcome != Outcome::Legitimate {
        return;
    }
    let detectors: Vec<_> = task.signals.iter().filter_map(|s| s.detector).collect();
    let learned = state.learned.get_or_insert_with(Default::default);
    if detectors.contains(&DetectorKind::ImpossibleTravel) {
        let until = at.plus(TRUSTED_TRIP_DAYS * DAY);
        for e in &task.context.events {
            if let (Some(card), Some(lat), Some(lon)) = (&e.card_id, e.lat, e.lon) {
                learned.trust_place(card, Point { lat, lon }, until);
            }
        }
    }
    for s in task.signals.iter().filter(|s| s.detector == Some(DetectorKind::AmountAnomaly)) {
        if let Some(amount) = s.facts.get("amount_eur").and_then(serde_json::Value::as_f64) {
            learned.confirmed_spend_eur = learned.confirmed_spend_eur.max(amount as f32);
        }
    }
    let countries: Vec<_> = task.context.events.iter().filter_map(|e| e.country).collect();
    state.trust(&countries, &[]);
}

/// Withdraws what a resolved task taught, when a supervisor reopens it: the places, countries and
/// amount a `legitimate` fraud outcome trusted, the care outcome it recorded. Trust is withdrawn
/// whole (a country trusted before the task too is untrusted: the safer side, since the agent
/// reopening says the resolution was wrong). A `confirmed_fraud` outcome forgot amounts and
/// patterns; those are not brought back (the safer side again). Pure.
pub fn unlearn(state: &mut CustomerState, task: &Task) {
    let Some(outcome) = task.outcome else { return };
    if task.queue == Queue::Care {
        if let Some(learned) = state.learned.as_mut() {
            if learned.care_outcome.is_some_and(|(_, o)| o == outcome) {
                learned.care_outcome = None;
            }
        }
        return;
    }
    if outcome != Outcome::Legitimate {
        return; // `customer_confirmed` teaches nothing; `confirmed_fraud` is not undone
    }
    if let Some(learned) = state.learned.as_mut() {
        for e in &task.context.events {
            if let (Some(card), Some(lat), Some(lon)) = (&e.card_id, e.lat, e.lon) {
                learned.distrust_place(card, Point { lat, lon });
            }
        }
        for s in task.signals.iter().filter(|s| s.detector == Some(DetectorKind::AmountAnomaly)) {
            if let Some(amount) = s.facts.get("amount_eur").and_then(serde_json::Value::as_f64) {
                if learned.confirmed_spend_eur <= amount as f32 + 0.01 {
                    learned.confirmed_spend_eur = 0.0;
                }
            }
        }
    }
    let countries: Vec<_> = task.context.events.iter().filter_map(|e| e.country).collect();
    state.untrust(&countries);
}

/// How long a customer's own "it was me" (`customer_confirmed`) holds back a repeat fraud alert
/// for the same card, merchant and country.
pub const CUSTOMER_WORD_HOLDS: i64 = DAY;

/// True if the customer said "it was me" (by an answer link, within [`CUSTOMER_WORD_HOLDS`])
/// about a card payment with the same card, at the same merchant, in the same country as
/// `event`: the last resolved fraud task, resolved `customer_confirmed`, holds such a payment.
/// The merchant is matched in the evidence's line, which names it as the event gave it.
fn customer_vouched(state: &CustomerState, event: &Event) -> bool {
    let EventBody::CardTransaction(t) = &event.body else { return false };
    let Some(incidents) = state.incidents.as_deref() else { return false };
    incidents.resolved.iter().any(|task| {
        task.queue == Queue::Fraud
            && task.outcome == Some(Outcome::CustomerConfirmed)
            && task
                .work
                .resolved_at
                .is_some_and(|at| at <= event.ts && event.ts.0 - at.0 <= CUSTOMER_WORD_HOLDS)
            && task.context.events.iter().any(|e| {
                e.card_id.as_deref() == Some(t.card_id.as_str())
                    && e.country == Some(t.place.country)
                    && !t.merchant_name.is_empty()
                    && e.summary.contains(t.merchant_name.as_str())
            })
    })
}

/// When the customer's timer is next due, as of `now`: the first of what each timer detector
/// asks for (a silence deadline once later than `now`, so a silence already judged does not
/// repeat; a re-evaluation while a sign of leaving is recent; an income's overdue point, then
/// daily while it is followed) and the pending absence deadlines.
fn next_due(rules: &RuleSet, state: &CustomerState, now: Timestamp) -> Option<Timestamp> {
    let detectors = timer_detectors(rules).filter_map(|d| d.next_timer(state, now));
    let absences = state.absences.iter().map(|a| a.deadline);
    detectors.chain(absences).min()
}

/// Starts and ends the waits of absence rules that this event concerns: an event matching a
/// rule's `absent` ends its wait (the awaited event came); one matching its `after` starts a
/// wait if none is pending for the rule (the first anchor is the one that breaches first).
fn track_absences(rules: &RuleSet, event: &Event, state: &mut CustomerState) {
    let indexes = rules.absences_for(event.kind());
    if indexes.is_empty() {
        return;
    }
    for &i in indexes {
        let rule = &rules.rules[i];
        let Some(a) = &rule.absence else { continue };
        let pending = state.absences.iter().any(|p| p.rule == rule.id_hash);
        // Only what can change something is evaluated: an end while a wait is pending, a start
        // while none is.
        let (ends, starts) = {
            let view = FeatureView::new(Some(event), state, None, None, event.ts);
            let matches = |kind, when: &Option<crate::rules::expr::Condition>| {
                event.kind() == kind && when.as_ref().is_none_or(|c| c.eval(&view))
            };
            let ends = pending && matches(a.absent, &a.absent_when);
            (ends, (!pending || ends) && matches(a.after, &a.after_when))
        };
        if ends {
            state.absences.retain(|p| !(p.rule == rule.id_hash && p.at <= event.ts));
        }
        if starts
            && state.absences.len() < MAX_PENDING_ABSENCES
            && !state.absences.iter().any(|p| p.rule == rule.id_hash)
        {
            state.absences.push(absence::pending(rule.id_hash, event, a.within));
        }
    }
}

/// Matches the event against the links of the sequence rules watching its type (on the state
/// before the event, so "a device never seen" means before it), keeps what matched, and fires
/// the rules whose chain it completes (cooldown, shadow and hits as for any rule). Marks older
/// than a rule's `within` plus the allowed lateness before this event can be in no chain any
/// more, and are dropped; so are those of rules no longer loaded.
fn match_sequences<'r>(
    rules: &'r RuleSet,
    event: &Event,
    state: &mut CustomerState,
    allowed_lateness: i64,
    firings: &mut Vec<Firing<'r>>,
    hits: &mut Vec<Hit>,
) {
    let indexes = rules.sequences_for(event.kind());
    if indexes.is_empty() {
        return;
    }
    let mut matched: Vec<(usize, SequenceMark)> = Vec::new();
    {
        let view = FeatureView::new(Some(event), state, None, None, event.ts);
        for &i in indexes {
            let rule = &rules.rules[i];
            let Some(s) = &rule.sequence else { continue };
            for (link, l) in s.links.iter().enumerate() {
                if l.watches(event.kind()) && l.when.as_ref().is_none_or(|c| c.eval(&view)) {
                    matched.push((i, sequence::mark(rule.id_hash, link as u8, event)));
                }
            }
        }
    }
    if matched.is_empty() {
        return;
    }
    let keep = |m: &SequenceMark| {
        rules.sequence_rule(m.rule).is_some_and(|(_, r)| {
            let within = r.sequence.as_ref().map_or(0, |s| s.within);
            event.ts.millis_since(m.at) <= within.saturating_add(allowed_lateness)
        })
    };
    state.sequences.retain(keep);
    let current = sequence::fingerprint(&event.event_id);
    let mut done: Vec<usize> = Vec::new();
    for &(i, _) in &matched {
        if done.contains(&i) {
            continue;
        }
        done.push(i);
        let rule = &rules.rules[i];
        let Some(s) = &rule.sequence else { continue };
        let marks: Vec<&SequenceMark> = state
            .sequences
            .iter()
            .filter(|m| m.rule == rule.id_hash)
            .chain(matched.iter().filter(|(j, _)| *j == i).map(|(_, m)| m))
            .collect();
        let Some(chain) = sequence::find_chain(&marks, s.links.len(), s.within, current) else { continue };
        let chain: Vec<&SequenceMark> = chain.into_iter().map(|k| marks[k]).collect();
        let signal = sequence::signal(&chain, &marks, event);
        if state.in_cooldown(rule.id_hash, signal.at, rule.cooldown) {
            continue;
        }
        state.mark_fired(rule.id_hash, signal.at);
        let shadow = rule.mode == Mode::Shadow;
        hits.push(Hit { rule: i, shadow });
        if !shadow {
            firings.push(Firing { rule, signal });
        }
    }
    for (_, m) in matched {
        // At most two marks per link of a rule (the newest in event time), and
        // MAX_SEQUENCE_MARKS in all (the oldest go first).
        let same: Vec<usize> = (0..state.sequences.len())
            .filter(|&k| state.sequences[k].rule == m.rule && state.sequences[k].link == m.link)
            .collect();
        if same.len() >= 2 {
            let oldest = same.into_iter().min_by_key(|&k| state.sequences[k].at).expect("two");
            if state.sequences[oldest].at > m.at {
                continue;
            }
            state.sequences.remove(oldest);
        }
        if state.sequences.len() >= MAX_SEQUENCE_MARKS {
            let oldest = (0..state.sequences.len()).min_by_key(|&k| state.sequences[k].at).expect("full");
            state.sequences.remove(oldest);
        }
        state.sequences.push(m);
    }
}

/// Fires the absence rules whose waits ran out by `now` (in deadline order): cooldown, shadow
/// and hits as for any rule. A wait whose rule is gone (rules reloaded) is dropped.
fn fire_absences<'r>(
    rules: &'r RuleSet,
    now: Timestamp,
    state: &mut CustomerState,
    firings: &mut Vec<Firing<'r>>,
    hits: &mut Vec<Hit>,
) {
    if !state.absences.iter().any(|p| absence::is_due(p, now)) {
        return;
    }
    let mut due: Vec<_> = Vec::new();
    state.absences.retain(|p| {
        let is_due = absence::is_due(p, now);
        if is_due {
            due.push(p.clone());
        }
        !is_due
    });
    due.sort_by_key(|p| (p.deadline, p.rule));
    for p in due {
        let Some((i, rule)) = rules.absence_rule(p.rule) else { continue };
        if state.in_cooldown(rule.id_hash, p.deadline, rule.cooldown) {
            continue;
        }
        state.mark_fired(rule.id_hash, p.deadline);
        let shadow = rule.mode == Mode::Shadow;
        hits.push(Hit { rule: i, shadow });
        if !shadow {
            firings.push(Firing { rule, signal: absence::signal(&p) });
        }
    }
}

/// The detectors of the rules that run on timers (each asked for its own next timer).
fn timer_detectors(rules: &RuleSet) -> impl Iterator<Item = &DetectorParams> + '_ {
    rules.for_timers().iter().filter_map(|&i| rules.rules[i].detector.as_ref())
}

/// Runs the rules of one phase: detector, condition, cooldown; collects live firings and hits.
#[allow(clippy::too_many_arguments)]
fn evaluate<'r>(
    rules: &'r RuleSet,
    indexes: &[usize],
    phase: Phase,
    event: Option<&Event>,
    now: Timestamp,
    state: &mut CustomerState,
    firings: &mut Vec<Firing<'r>>,
    hits: &mut Vec<Hit>,
) {
    for &i in indexes {
        let rule = &rules.rules[i];
        let kind = rule.detector_kind();
        if kind.map_or(Phase::BeforeApply, DetectorKind::phase) != phase {
            continue;
        }
        let signal = match &rule.detector {
            Some(d) => match d.detect(&DetectInput { event, state, now }) {
                Some(s) => Some(s),
                None => continue,
            },
            None => None,
        };
        if let Some(condition) = &rule.condition {
            let view = FeatureView::new(event, state, signal.as_ref(), kind, now);
            if !condition.eval(&view) {
                continue;
            }
        }
        if state.in_cooldown(rule.id_hash, now, rule.cooldown) {
            continue;
        }
        state.mark_fired(rule.id_hash, now);
        let shadow = rule.mode == Mode::Shadow;
        hits.push(Hit { rule: i, shadow });
        if !shadow {
            let signal = signal.unwrap_or_else(|| event_signal(event, now));
            firings.push(Firing { rule, signal });
        }
    }
}

/// The signal of a rule without a detector: the event itself.
fn event_signal(event: Option<&Event>, now: Timestamp) -> Signal {
    let mut facts = Vec::new();
    let mut evidence = Vec::new();
    let mut money = 0.0;
    if let Some(e) = event {
        event_facts(e, &mut facts);
        evidence.push(Evidence::from_event(e));
        money = match &e.body {
            EventBody::CardTransaction(t) => t.money.to_eur().unwrap_or(0.0),
            EventBody::Transfer(t) => t.money.to_eur().unwrap_or(0.0),
            _ => 0.0,
        };
    }
    Signal { at: now, facts, evidence, money_at_risk_eur: money }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::decode;

    const FOLLOW_UP: &str = r#"
[[rule]]
id = "no_follow_up"
queue = "care"
severity = "medium"
after = { on = "support_contact", when = "!event.resolved" }
absent = { on = "support_contact" }
within = "2d"
cooldown = "1h"
actions = ["call_customer"]
title.en = "No follow-up for {waited_days} days: {anchor_detail}"
title.ru = "Нет продолжения {waited_days} дн."
explanation.en = "x"
explanation.ru = "x"
script.en = "x"
script.ru = "x"
"#;

    fn contact(id: &str, customer: &str, ts: &str, resolved: bool) -> Event {
        decode(format!(
            r#"{{"event_id":"{id}","type":"support_contact","customer_id":"{customer}","ts":"{ts}","channel":"phone","reason":"card_blocked","resolved":{resolved}}}"#
        ).as_bytes())
        .unwrap()
    }

    /// One event can end a wait and start the next: each unresolved contact waits for a
    /// follow-up, every contact is one; the wait that runs out fires at its deadline, once.
    #[test]
    fn an_absence_fires_at_its_deadline_only_when_nothing_came() {
        let rules = RuleSet::from_sources(&[("f.toml".into(), FOLLOW_UP.into())]).unwrap();
        let engine = Engine::new(EngineConfig { allowed_lateness: 0, ..EngineConfig::default() });
        let mut fired = Vec::new();
        let run = |e: Event, fired: &mut Vec<(String, Timestamp)>| {
            for c in engine.process(&rules, &e).changes {
                fired.push((c.task.customer_id.clone(), c.task.signals.last().unwrap().at));
            }
        };
        run(contact("1", "c", "2026-11-01T10:00:00Z", false), &mut fired); // waits until 11-03 10:00
        run(contact("2", "c", "2026-11-02T10:00:00Z", true), &mut fired); // the follow-up: ends it
        run(contact("3", "c", "2026-11-04T10:00:00Z", false), &mut fired); // waits until 11-06 10:00
        run(contact("4", "other", "2026-11-06T09:59:59Z", true), &mut fired); // time passes, not yet
        assert!(fired.is_empty(), "{fired:?}");
        assert_eq!(engine.state.customers.get("c").unwrap().absences.len(), 1);
        run(contact("5", "other", "2026-11-06T10:00:00Z", true), &mut fired); // the deadline passes
        let deadline = Timestamp::parse_rfc3339("2026-11-06T10:00:00Z").unwrap();
        assert_eq!(fired, vec![("c".to_string(), deadline)]);
        assert!(engine.state.customers.get("c").unwrap().absences.is_empty());
        run(contact("6", "other", "2026-11-09T10:00:00Z", true), &mut fired);
        assert_eq!(fired.len(), 1, "a wait fires once");
    }

    const CHAIN: &str = r#"
[[rule]]
id = "reset_device_payee"
queue = "fraud"
severity = "critical"
after = { on = "support_contact", when = "event.reason == 'password_reset'" }
then = [
  { on = "login", when = "event.new_device" },
  { on = "transfer", when = "event.outgoing && event.new_payee" },
]
within = "1h"
cooldown = "6h"
actions = ["hold_transfer"]
title.en = "{links} links in {minutes} min: {first_detail} to {last_detail}, {amount_eur} EUR"
title.ru = "x"
explanation.en = "x"
explanation.ru = "x"
script.en = "x"
script.ru = "x"
"#;

    fn line(id: &str, ts: &str, body: &str) -> Event {
        decode(format!(r#"{{"event_id":"{id}","customer_id":"c","ts":"2026-11-{ts}Z",{body}}}"#).as_bytes())
            .unwrap()
    }

    /// A month of the customer's past: a known phone and a landlord paid.
    fn past() -> Vec<Event> {
        vec![
            line(
                "p1",
                "01T09:00:00",
                r#""type":"login","channel":"mobile","device_id":"old-phone","success":true"#,
            ),
            line(
                "p2",
                "01T09:05:00",
                r#""type":"transfer","direction":"out","amount":700,"currency":"EUR","counterparty_bank":"Landlord Bank""#,
            ),
        ]
    }

    fn reset(id: &str, ts: &str) -> Event {
        line(
            id,
            ts,
            r#""type":"support_contact","channel":"phone","reason":"password_reset","resolved":true"#,
        )
    }

    fn new_phone(id: &str, ts: &str) -> Event {
        line(id, ts, r#""type":"login","channel":"mobile","device_id":"new-phone","success":true"#)
    }

    fn pay(id: &str, ts: &str, bank: &str) -> Event {
        line(
            id,
            ts,
            &format!(
                r#""type":"transfer","direction":"out","amount":1800,"currency":"EUR","counterparty_bank":"{bank}""#
            ),
        )
    }

    fn titles(engine: &Engine, rules: &RuleSet, events: &[Event]) -> Vec<(String, usize)> {
        let mut out = Vec::new();
        for e in events {
            for c in engine.process(rules, e).changes {
                out.push((c.task.title.clone(), c.task.context.events.len()));
            }
        }
        out
    }

    /// "After X, then Y, then Z within T": each link by its own condition on the state before
    /// it, in event-time order, whichever arrives last completing the chain (a late first link
    /// included); each link is evidence; a known payee, a gap too long or a wrong order is no
    /// chain.
    #[test]
    fn a_sequence_fires_on_the_link_that_completes_it_in_event_time() {
        let rules = RuleSet::from_sources(&[("f.toml".into(), CHAIN.into())]).unwrap();
        let run = |events: Vec<Event>| {
            let engine =
                Engine::new(EngineConfig { allowed_lateness: 2 * 60 * MINUTE, ..EngineConfig::default() });
            let all: Vec<Event> = past().into_iter().chain(events).collect();
            titles(&engine, &rules, &all)
        };
        let want = vec![("3 links in 40 min: password reset to Far Bank, 1800 EUR".to_string(), 3)];
        assert_eq!(
            run(vec![
                reset("r", "20T10:00:00"),
                new_phone("l", "20T10:15:00"),
                pay("t", "20T10:40:00", "Far Bank")
            ]),
            want
        );
        assert_eq!(
            run(vec![
                new_phone("l", "20T10:15:00"),
                pay("t", "20T10:40:00", "Far Bank"),
                reset("r", "20T10:00:00")
            ]),
            want,
            "the reset delivered late completes the chain"
        );
        assert!(
            run(vec![
                reset("r", "20T10:00:00"),
                new_phone("l", "20T10:15:00"),
                pay("t", "20T10:40:00", "Landlord Bank")
            ])
            .is_empty(),
            "a known payee"
        );
        assert!(
            run(vec![
                reset("r", "20T09:00:00"),
                new_phone("l", "20T10:15:00"),
                pay("t", "20T10:40:00", "Far Bank")
            ])
            .is_empty(),
            "100 min from first to last"
        );
        assert!(
            run(vec![
                new_phone("l", "20T10:00:00"),
                reset("r", "20T10:15:00"),
                pay("t", "20T10:40:00", "Far Bank")
            ])
            .is_empty(),
            "the device before the reset"
        );
        let engine = Engine::new(EngineConfig::default());
        let mut all = past();
        all.extend([
            reset("r", "20T10:00:00"),
            new_phone("l", "20T10:15:00"),
            pay("t", "20T10:40:00", "Far Bank"),
        ]);
        all.push(pay("t2", "20T10:45:00", "Other Far Bank"));
        assert_eq!(titles(&engine, &rules, &all).len(), 1, "the cooldown holds a second payment");
        assert!(engine.state.customers.get("c").unwrap().sequences.len() <= crate::state::MAX_SEQUENCE_MARKS);
    }

    /// The default pack's takeover: a reset, a new phone and most of the income to a new bank is
    /// found; the same reset and new phone followed by the usual rent is ordinary life.
    #[test]
    fn the_default_takeover_rule_tells_a_takeover_from_a_new_phone_and_the_rent() {
        let rules = RuleSet::load_dir(std::path::Path::new("rules")).unwrap();
        let income = |id: &str, ts: &str| {
            line(
                id,
                ts,
                r#""type":"transfer","direction":"in","amount":2000,"currency":"EUR","counterparty_bank":"Employer Bank""#,
            )
        };
        let run = |last: Event| {
            let engine = Engine::new(EngineConfig::default());
            let mut all = past();
            all.extend([
                income("i1", "15T08:00:00"),
                reset("r", "20T10:00:00"),
                new_phone("l", "20T10:15:00"),
                last,
            ]);
            titles(&engine, &rules, &all)
        };
        let found = run(pay("t", "20T10:40:00", "Far Bank"));
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].0.starts_with("Possible account takeover: 1800 EUR to Far Bank"), "{found:?}");
        let rent = line(
            "t",
            "20T10:40:00",
            r#""type":"transfer","direction":"out","amount":700,"currency":"EUR","counterparty_bank":"Landlord Bank""#,
        );
        assert_eq!(run(rent), vec![]);
    }

    /// A customer idle for `expire_after` with nothing open is forgotten when the partition's
    /// event time enters a new day; one with an open task is kept; a later event of the
    /// forgotten one starts afresh (even its old event id is new to it).
    #[test]
    fn idle_customers_expire_and_come_back_afresh() {
        let rules = RuleSet::from_sources(&[("f.toml".into(), FOLLOW_UP.into())]).unwrap();
        let engine = Engine::new(EngineConfig { allowed_lateness: 0, expire_after: 10 * DAY });
        engine.process(&rules, &contact("1", "idle", "2026-11-01T10:00:00Z", true));
        engine.process(&rules, &contact("2", "task", "2026-11-01T10:00:00Z", false)); // waits 2 days
        let opened = engine.process(&rules, &contact("3", "other", "2026-11-04T10:00:00Z", true));
        assert_eq!(opened.changes.len(), 1, "the wait ran out: a task opens for `task`");
        // 11-11: the cutoff is 11-01 00:00, before `idle`'s last event: kept.
        let p = engine.process(&rules, &contact("4", "other", "2026-11-11T09:00:00Z", true));
        assert!(p.expired.is_empty(), "{:?}", p.expired);
        // Later the same day: no new day, no sweep.
        let p = engine.process(&rules, &contact("5", "other", "2026-11-11T23:00:00Z", true));
        assert!(p.expired.is_empty());
        // 11-12: the cutoff is 11-02 00:00: `idle` goes, `task` (open task) stays.
        let p = engine.process(&rules, &contact("6", "other", "2026-11-12T00:00:01Z", true));
        assert_eq!(p.expired, vec![(0, Box::<str>::from("idle"))]);
        assert!(p.timer_touched.contains(&(0, "idle".into())), "touched, for the checkpoint");
        assert!(engine.state.customers.get("idle").is_none());
        assert!(engine.state.customers.get("task").is_some());
        assert!(engine.state.customers.get("other").is_some());
        assert_eq!(engine.take_expired_count(), 1);
        assert_eq!(engine.take_expired_count(), 0, "counted once");
        // The same event id again is new to the fresh state.
        let back = engine.process(&rules, &contact("1", "idle", "2026-11-12T10:00:00Z", true));
        assert!(!back.duplicate);
        let state = engine.state.customers.get("idle").unwrap();
        assert_eq!(state.contacts.len(), 1, "a new, empty state with one contact");
        assert_eq!(state.activity.first, Timestamp::parse_rfc3339("2026-11-12T10:00:00Z").ok());
    }

    /// The sweep runs once per day of event time, whichever partition gets there first; a
    /// partition that reaches the day later finds its idle customers at their next event or
    /// command, and treats them exactly as swept ones: the event starts afresh, the command
    /// finds no customer. So the output does not depend on which partition ran ahead.
    #[test]
    fn an_idle_customer_not_swept_yet_is_treated_as_swept() {
        use crate::command::{Action, Actor, Role};
        let rules = RuleSet::from_sources(&[("f.toml".into(), FOLLOW_UP.into())]).unwrap();
        let engine = Engine::new(EngineConfig { allowed_lateness: 0, expire_after: 10 * DAY });
        engine.process_in(1, &rules, &contact("1", "idle-a", "2026-11-01T10:00:00Z", true));
        engine.process_in(1, &rules, &contact("2", "idle-b", "2026-11-01T10:00:00Z", true));
        // Partition 0 runs ahead to 11-20 and sweeps; partition 1's time is still 11-01.
        let p = engine.process_in(0, &rules, &contact("3", "ahead", "2026-11-20T10:00:00Z", true));
        assert!(p.expired.is_empty(), "judged by partition 1's own time: {:?}", p.expired);
        // Partition 1 reaches 11-20 too: the day was swept already, no second sweep.
        let p = engine.process_in(1, &rules, &contact("4", "other", "2026-11-20T10:00:00Z", true));
        assert!(p.expired.is_empty());
        assert!(engine.state.customers.get("idle-a").is_some(), "not swept yet");
        assert_eq!(engine.take_expired_count(), 0);
        // Its next event: a fresh start (its old event id is new to it), counted once.
        let back = engine.process_in(1, &rules, &contact("1", "idle-a", "2026-11-20T11:00:00Z", true));
        assert!(!back.duplicate);
        assert_eq!(engine.state.customers.get("idle-a").unwrap().contacts.len(), 1);
        assert_eq!(engine.take_expired_count(), 1);
        // A command for the other: no customer, as if swept.
        let command = Command {
            command_id: "k1".into(),
            customer_id: "idle-b".into(),
            task_id: "t".into(),
            at: Timestamp::parse_rfc3339("2026-11-20T12:00:00Z").unwrap(),
            actor: Actor { name: "ana".into(), role: Role::Supervisor },
            action: Action::Claim,
        };
        let out = engine.command(1, &command);
        assert_eq!(out.results[0].refusal, Some(Refusal::NotFound), "{:?}", out.results);
        let detail = out.results[0].detail.as_deref().unwrap_or_default();
        assert!(detail.contains("not known to the engine"), "{detail}");
        assert!(!engine.state.customers.get("idle-b").unwrap().has_seen("k1"), "nothing applied");
        // The next day's sweep forgets it from memory.
        let p = engine.process_in(1, &rules, &contact("5", "other", "2026-11-21T00:00:01Z", true));
        assert_eq!(p.expired, vec![(1, Box::<str>::from("idle-b"))]);
        assert!(engine.state.customers.get("idle-b").is_none());
    }

    /// Expiry waits for other partitions' customers to be idle by their own partition's time.
    #[test]
    fn expiry_is_per_partition() {
        let rules = RuleSet::from_sources(&[("f.toml".into(), FOLLOW_UP.into())]).unwrap();
        let engine = Engine::new(EngineConfig { allowed_lateness: 0, expire_after: DAY });
        engine.process_in(1, &rules, &contact("1", "on-1", "2026-11-01T10:00:00Z", true));
        engine.process_in(0, &rules, &contact("2", "on-0", "2026-11-01T10:00:00Z", true));
        let p = engine.process_in(0, &rules, &contact("3", "on-0-later", "2026-11-05T10:00:00Z", true));
        assert_eq!(p.expired, vec![(0, Box::<str>::from("on-0"))]);
        assert!(engine.state.customers.get("on-1").is_some(), "partition 1's time has not moved");
    }
}
