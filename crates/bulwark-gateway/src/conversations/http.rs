//! `GET` and `DELETE /v1/responses/{id}` and
//! `GET /v1/responses/{id}/input_items`, in OpenAI's shapes. A client key
//! sees only its own responses; any other id is OpenAI's 404.

use std::collections::HashMap;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use bulwark::error::ApiError;
use serde_json::{Value, json};

use super::{corrupt, not_found, store_failed};
use crate::{ClientFormat, Gateway, respond};

/// OpenAI's bounds for `limit` on list endpoints, and its default.
const MAX_LIMIT: usize = 100;
const DEFAULT_LIMIT: usize = 20;

type Params = Result<Query<HashMap<String, String>>, QueryRejection>;

/// The caller's tenant: its client key's name, `None` on an open gateway.
fn tenant(gateway: &Gateway, headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let live = gateway.live();
    let key = live.auth.authenticate(headers)?;
    Ok(key.map(|k| k.name.clone()))
}

fn params(query: Params) -> Result<HashMap<String, String>, ApiError> {
    query.map(|Query(q)| q).map_err(|rejection| {
        ApiError::invalid(format!("the query string could not be read: {rejection}"))
    })
}

fn json_text(body: String) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

/// An answer, or the error in OpenAI's format.
fn answer(result: Result<Response, ApiError>) -> Response {
    result.unwrap_or_else(|error| respond::error(ClientFormat::OpenAi, &error, 0))
}

pub async fn get_response(
    State(gateway): State<Gateway>,
    Path(id): Path<String>,
    headers: HeaderMap,
    query: Params,
) -> Response {
    answer(get(&gateway, &id, &headers, query).await)
}

async fn get(
    gateway: &Gateway,
    id: &str,
    headers: &HeaderMap,
    query: Params,
) -> Result<Response, ApiError> {
    let tenant = tenant(gateway, headers)?;
    let query = params(query)?;
    if query.get("stream").is_some_and(|s| s == "true") {
        return Err(ApiError::invalid_param(
            "stream",
            "Bulwark does not replay a stored response as a stream; retrieve it without `stream=true`",
        ));
    }
    let stored = gateway
        .conversations
        .load(id, tenant.as_deref())
        .await
        .map_err(|error| store_failed(&error, "reading a stored response"))?
        .ok_or_else(|| not_found(id, None))?;
    // Stored as the client received it: sent back as it is.
    Ok(json_text(stored.response))
}

pub async fn delete_response(
    State(gateway): State<Gateway>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    answer(delete(&gateway, &id, &headers).await)
}

async fn delete(gateway: &Gateway, id: &str, headers: &HeaderMap) -> Result<Response, ApiError> {
    let tenant = tenant(gateway, headers)?;
    let deleted = gateway
        .conversations
        .delete(id, tenant.as_deref())
        .await
        .map_err(|error| store_failed(&error, "deleting a stored response"))?;
    if !deleted {
        return Err(not_found(id, None));
    }
    Ok(json_text(
        json!({"id": id, "object": "response", "deleted": true}).to_string(),
    ))
}

pub async fn list_input_items(
    State(gateway): State<Gateway>,
    Path(id): Path<String>,
    headers: HeaderMap,
    query: Params,
) -> Response {
    answer(list(&gateway, &id, &headers, query).await)
}

async fn list(
    gateway: &Gateway,
    id: &str,
    headers: &HeaderMap,
    query: Params,
) -> Result<Response, ApiError> {
    let tenant = tenant(gateway, headers)?;
    let page = Page::read(&params(query)?)?;
    let text = gateway
        .conversations
        .load_input_items(id, tenant.as_deref())
        .await
        .map_err(|error| store_failed(&error, "reading a response's input items"))?
        .ok_or_else(|| not_found(id, None))?;
    let items = serde_json::from_str::<Vec<Value>>(&text)
        .map_err(|_| corrupt(id, "input items", "listing them"))?;
    Ok(json_text(page.list(id, items)?.to_string()))
}

/// `limit`, `order` and `after`, as OpenAI's list endpoints take them.
#[derive(Debug, PartialEq)]
struct Page {
    limit: usize,
    newest_first: bool,
    after: Option<String>,
}

impl Page {
    fn read(query: &HashMap<String, String>) -> Result<Page, ApiError> {
        let limit = match query.get("limit") {
            None => DEFAULT_LIMIT,
            Some(text) => text
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=MAX_LIMIT).contains(n))
                .ok_or_else(|| {
                    ApiError::invalid_param(
                        "limit",
                        format!("`limit` must be an integer from 1 to {MAX_LIMIT}"),
                    )
                })?,
        };
        let newest_first = match query.get("order").map(String::as_str) {
            None | Some("desc") => true,
            Some("asc") => false,
            Some(_) => {
                return Err(ApiError::invalid_param(
                    "order",
                    "`order` must be `asc` or `desc`",
                ));
            }
        };
        Ok(Page {
            limit,
            newest_first,
            after: query.get("after").cloned(),
        })
    }

    /// One page of a response's input items, in OpenAI's list shape.
    fn list(&self, response_id: &str, items: Vec<Value>) -> Result<Value, ApiError> {
        let mut listed: Vec<(String, Value)> = items
            .into_iter()
            .enumerate()
            .map(|(index, item)| listed_item(response_id, index, item))
            .collect();
        if self.newest_first {
            listed.reverse();
        }
        let start = match &self.after {
            None => 0,
            Some(after) => {
                listed
                    .iter()
                    .position(|(id, _)| id == after)
                    .ok_or_else(|| {
                        ApiError::invalid_param(
                            "after",
                            format!("response '{response_id}' has no input item with id '{after}'"),
                        )
                    })?
                    + 1
            }
        };
        let rest = listed.len().saturating_sub(start);
        let page: Vec<(String, Value)> = listed.into_iter().skip(start).take(self.limit).collect();
        Ok(json!({
            "object": "list",
            "first_id": page.first().map(|(id, _)| id),
            "last_id": page.last().map(|(id, _)| id),
            "has_more": rest > page.len(),
            "data": page.into_iter().map(|(_, item)| item).collect::<Vec<_>>(),
        }))
    }
}

/// An input item as OpenAI lists it: with an `id` (one made from the
/// response's id and the item's place when the client sent none), and a
/// message's text as content parts.
fn listed_item(response_id: &str, index: usize, mut item: Value) -> (String, Value) {
    let Some(fields) = item.as_object_mut() else {
        return (format!("{response_id}-input-{index}"), item);
    };
    let id = match fields.get("id").and_then(Value::as_str) {
        Some(id) => id.to_string(),
        None => {
            let id = format!("{response_id}-input-{index}");
            fields.insert("id".into(), Value::String(id.clone()));
            id
        }
    };
    let role = fields
        .get("role")
        .and_then(Value::as_str)
        .map(str::to_string);
    if let Some(role) = role {
        fields
            .entry("type")
            .or_insert_with(|| Value::String("message".into()));
        if let Some(Value::String(text)) = fields.get("content") {
            let kind = if role == "assistant" {
                "output_text"
            } else {
                "input_text"
            };
            let parts = json!([{"type": kind, "text": text}]);
            fields.insert("content".into(), parts);
        }
    }
    (id, item)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn items(n: usize) -> Vec<Value> {
        (0..n)
            .map(|i| json!({"role": "user", "content": format!("turn {i}")}))
            .collect()
    }

    #[test]
    fn pages_follow_openai_s_limit_order_and_after() {
        let page = Page::read(&query(&[])).unwrap();
        assert_eq!((page.limit, page.newest_first), (20, true));
        let list = page.list("resp_1", items(3)).unwrap();
        assert_eq!(list["object"], "list");
        assert_eq!(
            list["first_id"], "resp_1-input-2",
            "newest first by default"
        );
        assert_eq!(list["last_id"], "resp_1-input-0");
        assert_eq!(list["has_more"], false);
        assert_eq!(
            list["data"][0],
            json!({"id": "resp_1-input-2", "type": "message", "role": "user",
                "content": [{"type": "input_text", "text": "turn 2"}]})
        );

        let asc = Page::read(&query(&[("order", "asc"), ("limit", "2")])).unwrap();
        let first = asc.list("r", items(5)).unwrap();
        assert_eq!(first["data"].as_array().unwrap().len(), 2);
        assert_eq!(
            (first["first_id"].as_str(), first["last_id"].as_str()),
            (Some("r-input-0"), Some("r-input-1"))
        );
        assert_eq!(first["has_more"], true);
        let next = Page::read(&query(&[
            ("order", "asc"),
            ("limit", "2"),
            ("after", "r-input-3"),
        ]))
        .unwrap()
        .list("r", items(5))
        .unwrap();
        assert_eq!(next["first_id"], "r-input-4");
        assert_eq!(next["has_more"], false);
        let empty = Page::read(&query(&[]))
            .unwrap()
            .list("r", Vec::new())
            .unwrap();
        assert_eq!(empty["first_id"], Value::Null);
        assert_eq!(empty["data"], json!([]));
    }

    #[test]
    fn items_keep_their_own_ids_and_bad_parameters_name_themselves() {
        let call = json!({"type": "function_call", "id": "fc_9", "call_id": "c", "name": "f",
            "arguments": "{}"});
        let (id, item) = listed_item("r", 0, call.clone());
        assert_eq!((id.as_str(), item), ("fc_9", call));
        let (_, assistant) = listed_item("r", 1, json!({"role": "assistant", "content": "hi"}));
        assert_eq!(assistant["content"][0]["type"], "output_text");

        for (key, value) in [
            ("limit", "0"),
            ("limit", "101"),
            ("limit", "x"),
            ("order", "up"),
        ] {
            let error = Page::read(&query(&[(key, value)])).unwrap_err();
            assert_eq!((error.status, error.param.as_deref()), (400, Some(key)));
        }
        let error = Page::read(&query(&[("after", "nope")]))
            .unwrap()
            .list("r", items(2))
            .unwrap_err();
        assert_eq!(error.param.as_deref(), Some("after"));
    }
}
