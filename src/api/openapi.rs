//! The OpenAPI document (`/openapi.json`) and the Swagger UI (`/docs`), both served by the
//! binary (the UI's assets are vendored at build time: nothing is fetched from the internet).

use axum::Router;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
use utoipa::{Modify, OpenApi};
use utoipa_swagger_ui::SwaggerUi;

use super::{customers, problem, rules, tasks, tokens};

#[derive(OpenApi)]
#[openapi(
    info(title = "callahead agents' API", description = "Queues, tasks and their lifecycle, customers, rules and the audit trail. Every change is a command applied by the engine that owns the customer; answers are read-your-writes."),
    paths(
        tasks::list_tasks, tasks::get_task, tasks::get_version,
        tasks::claim_doc, tasks::release_doc, tasks::contacted_doc, tasks::resolve_doc, tasks::note_doc,
        tasks::reassign_doc, tasks::reopen_doc, tasks::snooze_doc, tasks::block_card_doc,
        tasks::next, tasks::command_result, tasks::audit_of_actor, tasks::me,
        customers::customer, customers::erase, customers::export, tokens::create, tokens::list, tokens::rotate, tokens::revoke, rules::list_rules, rules::validate,
    ),
    components(schemas(problem::Problem)),
    modifiers(&Bearer, &TooManyFailures),
)]
pub struct ApiDoc;

struct Bearer;

impl Modify for Bearer {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// Every operation that needs a token may answer 429: the client's address sent too many wrong
/// tokens in the last minute ([`super::auth::FailureLimiter`]), whatever this request carries.
struct TooManyFailures;

impl Modify for TooManyFailures {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let problem = ContentBuilder::new().schema(Some(Ref::from_schema_name("Problem"))).build();
        let response = ResponseBuilder::new()
            .description("Too many wrong tokens from this address in the last minute; wait")
            .content("application/problem+json", problem)
            .build();
        for item in openapi.paths.paths.values_mut() {
            let operations =
                [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch];
            for operation in operations.into_iter().flatten() {
                if operation.security.as_ref().is_some_and(|s| !s.is_empty()) {
                    operation
                        .responses
                        .responses
                        .entry("429".to_string())
                        .or_insert_with(|| response.clone().into());
                }
            }
        }
    }
}

/// `/openapi.json` and `/docs`.
pub fn routes() -> Router {
    Router::new().merge(SwaggerUi::new("/docs").url("/openapi.json", ApiDoc::openapi()))
}
