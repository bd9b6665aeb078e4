//! JSON-RPC messages out of a Streamable HTTP answer: a JSON body, or a `text/event-stream`
//! whose events carry one message each in their `data` lines.

use serde_json::Value;

/// The `data` of each event in an SSE text (complete events, and a last one the stream
/// ended in), per the HTML event-stream format: lines end in CRLF, LF or CR; `data:` with
/// one optional space; several `data` lines join with LF.
pub fn event_data(text: &str) -> Vec<String> {
    let mut events = Vec::new();
    let mut data: Option<String> = None;
    let normalized = text.replace("\r\n", "\n").replace('\r', "\n");
    for line in normalized.split('\n') {
        if line.is_empty() {
            events.extend(data.take());
            continue;
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        if field == "data" {
            let value = value.strip_prefix(' ').unwrap_or(value);
            match &mut data {
                Some(d) => {
                    d.push('\n');
                    d.push_str(value);
                }
                None => data = Some(value.to_owned()),
            }
        }
    }
    events.extend(data);
    events
}

/// The JSON-RPC response with `id` in an SSE text, once it is complete.
pub fn find_response(text: &str, id: u64) -> Option<Value> {
    event_data(text)
        .iter()
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .find(|m| m.get("id").and_then(Value::as_u64) == Some(id))
}

/// Why an answer holds no usable response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    /// The body is neither JSON nor an event stream.
    #[error("unexpected content type '{0}' (want application/json or text/event-stream)")]
    ContentType(String),
    /// The body is not JSON.
    #[error("the body is not JSON: {0}")]
    NotJson(String),
    /// No message answers the request.
    #[error("no JSON-RPC response with id {0} in the answer")]
    NoResponse(u64),
    /// The server answered with a JSON-RPC error.
    #[error("the server answered with a JSON-RPC error: {0}")]
    RpcError(String),
}

/// The `result` of the response to request `id`, from a body of `content_type`.
pub fn result_of(content_type: &str, body: &str, id: u64) -> Result<Value, MessageError> {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let message = match essence.as_str() {
        "text/event-stream" => find_response(body, id).ok_or(MessageError::NoResponse(id))?,
        "application/json" => {
            let value: Value =
                serde_json::from_str(body).map_err(|e| MessageError::NotJson(e.to_string()))?;
            // A batch answer is an array; the response is the element with our id.
            let found = match value {
                Value::Array(items) => items
                    .into_iter()
                    .find(|m| m.get("id").and_then(Value::as_u64) == Some(id)),
                single => Some(single),
            };
            found
                .filter(|m| m.get("id").and_then(Value::as_u64) == Some(id))
                .ok_or(MessageError::NoResponse(id))?
        }
        _ => return Err(MessageError::ContentType(content_type.to_owned())),
    };
    if let Some(error) = message.get("error") {
        return Err(MessageError::RpcError(error.to_string()));
    }
    message
        .get("result")
        .cloned()
        .ok_or(MessageError::NoResponse(id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_split_on_blank_lines_and_data_lines_joined() {
        let text = "event: message\r\ndata: {\"a\":\r\ndata: 1}\r\n\r\n: comment\n\ndata:x\n\n";
        assert_eq!(event_data(text), vec!["{\"a\":\n1}", "x"]);
    }

    #[test]
    fn the_response_is_found_among_notifications() {
        let text = "data: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\"}\n\n\
                    data: {\"jsonrpc\":\"2.0\",\"id\":2,\"result\":{\"tools\":[]}}\n\n";
        assert_eq!(
            result_of("text/event-stream", text, 2),
            Ok(serde_json::json!({"tools": []}))
        );
        assert_eq!(
            result_of("text/event-stream", text, 3),
            Err(MessageError::NoResponse(3))
        );
    }

    #[test]
    fn json_answers_errors_and_wrong_types_are_told_apart() {
        let ok = r#"{"jsonrpc":"2.0","id":1,"result":{"protocolVersion":"2025-06-18"}}"#;
        assert!(result_of("application/json; charset=utf-8", ok, 1).is_ok());
        let err = r#"{"jsonrpc":"2.0","id":1,"error":{"code":-32600,"message":"no"}}"#;
        assert!(matches!(
            result_of("application/json", err, 1),
            Err(MessageError::RpcError(_))
        ));
        assert!(matches!(
            result_of("text/html", "<p>hi</p>", 1),
            Err(MessageError::ContentType(_))
        ));
        assert!(matches!(
            result_of("application/json", "{", 1),
            Err(MessageError::NotJson(_))
        ));
    }
}
