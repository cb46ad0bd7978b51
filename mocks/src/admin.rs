//! The admin API under `/__mock/` on each fake's own port: faults, settings, reset, journal.
//!
//! A malformed admin request gets a 400 whose JSON names the problem; the fake keeps serving.

use crate::fault::FaultSpec;
use crate::http::json;
use crate::state::{SettingsPatch, State};
use crate::wire::{Request, ResponseTemplate};
use serde_json::json;

/// The path prefix of the admin API.
pub const ADMIN_PREFIX: &str = "/__mock/";

fn bad(message: impl Into<String>) -> ResponseTemplate {
    json(400, &json!({"error": message.into()}))
}

fn parse<T: serde::de::DeserializeOwned>(req: &Request, what: &str) -> Result<T, ResponseTemplate> {
    if req.body.iter().all(u8::is_ascii_whitespace) {
        return Err(bad(format!("{what}: the body is empty; expected a JSON object")));
    }
    let de = &mut serde_json::Deserializer::from_slice(&req.body);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        if path == "." {
            bad(format!("{what}: {}", e.inner()))
        } else {
            bad(format!("{what}: field `{path}`: {}", e.inner()))
        }
    })
}

/// Answers an admin request of one fake.
pub(crate) fn respond(s: &State, req: &Request) -> ResponseTemplate {
    let path = req.url.path().trim_end_matches('/');
    match (req.method.as_str(), path) {
        ("POST", "/__mock/faults") => match parse::<FaultSpec>(req, "invalid fault") {
            Ok(spec) => match s.add_fault(spec) {
                Ok(f) => json(201, &json!(f)),
                Err(e) => bad(format!("invalid fault: {e}")),
            },
            Err(t) => t,
        },
        ("GET", "/__mock/faults") => json(200, &json!({"faults": s.faults()})),
        ("DELETE", "/__mock/faults") => {
            let n = s.faults().len();
            s.clear_faults();
            json(200, &json!({"cleared": n}))
        }
        ("GET", "/__mock/settings") => json(200, &json!(s.settings())),
        ("POST", "/__mock/settings") => match parse::<SettingsPatch>(req, "invalid settings") {
            Ok(p) => match p.validate() {
                Ok(()) => json(200, &json!(s.update_settings(p))),
                Err(e) => bad(format!("invalid settings: {e}")),
            },
            Err(t) => t,
        },
        ("POST", "/__mock/reset") => {
            s.reset();
            json(200, &json!({"reset": true, "provider": s.provider().name()}))
        }
        ("GET", "/__mock/requests") => json(200, &json!(s.journal_view())),
        ("DELETE", "/__mock/requests") => {
            s.clear_journal();
            json(200, &json!({"cleared": true}))
        }
        (m, p) => json(
            404,
            &json!({"error": format!("no admin endpoint {m} {p}; see POST/GET/DELETE /__mock/faults, GET/POST /__mock/settings, POST /__mock/reset, GET/DELETE /__mock/requests")}),
        ),
    }
}
