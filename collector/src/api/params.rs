//! Request parameters (URL query plus form body) and response helpers.

use axum::extract::{FromRequest, Query, Request};
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use osprey_promql::api::{ErrorType, error_response};
use serde_json::Value;

/// All parameters of a request: form body values first, then URL parameters.
#[derive(Debug, Default, Clone)]
pub struct Params(pub Vec<(String, String)>);

impl Params {
    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// All values of `name` (e.g. `match[]`).
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0.iter().filter(|(n, _)| n == name).map(|(_, v)| v.as_str()).collect()
    }
}

impl<S: Send + Sync> FromRequest<S> for Params {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Response> {
        let url: Vec<(String, String)> = Query::try_from_uri(req.uri())
            .map(|q: Query<Vec<(String, String)>>| q.0)
            .map_err(|e| bad_data(&format!("invalid query string: {e}")))?;
        let is_form = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
        let mut out = Vec::new();
        if req.method() == Method::POST && is_form {
            let axum::Form(body) = axum::Form::<Vec<(String, String)>>::from_request(req, state)
                .await
                .map_err(|e| bad_data(&format!("error parsing form body: {}", e.body_text())))?;
            out.extend(body);
        }
        out.extend(url);
        Ok(Params(out))
    }
}

/// A JSON response with `code`.
pub fn json(code: u16, v: &Value) -> Response {
    raw(code, v.to_string())
}

/// A response with a pre-rendered JSON body.
pub fn raw(code: u16, body: String) -> Response {
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// An error response of `kind`.
pub fn error(kind: ErrorType, msg: &str) -> Response {
    let (code, v) = error_response(kind, msg);
    json(code, &v)
}

/// A `bad_data` (400) error response.
pub fn bad_data(msg: &str) -> Response {
    error(ErrorType::BadData, msg)
}

/// Prometheus's text for a parameter that does not parse.
pub fn invalid_param(name: &str, err: &str) -> Response {
    bad_data(&format!("invalid parameter \"{name}\": {err}"))
}
