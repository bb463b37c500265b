//! The optional reply-drafting connector: agent assist can ask a model server that speaks
//! the OpenAI chat-completions protocol (llama.cpp's `llama-server`, vLLM, Ollama, LocalAI
//! — a local model server) to draft a reply for the agent to edit. Off unless an endpoint
//! is configured; nothing else in kefu depends on it, and nothing is sent to a customer
//! without an agent.
//!
//! Plain HTTP only: the server is meant to run beside kefu. The API key, when there is
//! one, is sent as a bearer token and never logged or printed.

use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use serde::Deserialize;

/// Where the model server is and what to ask it for.
#[derive(Clone)]
pub struct DraftConfig {
    endpoint: Endpoint,
    pub model: String,
    api_key: Option<String>,
    pub timeout: Duration,
}

impl std::fmt::Debug for DraftConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DraftConfig")
            .field("endpoint", &self.endpoint.to_string())
            .field("model", &self.model)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("timeout", &self.timeout)
            .finish()
    }
}

#[derive(Clone, Debug, PartialEq)]
struct Endpoint {
    host: String,
    port: u16,
    /// The path before `/chat/completions`, e.g. `/v1`.
    base_path: String,
}

impl Endpoint {
    /// `host:port`, an IPv6 host in brackets.
    fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "http://{}{}", self.authority(), self.base_path)
    }
}

impl DraftConfig {
    /// `endpoint` is the server's base URL, e.g. `http://127.0.0.1:8080/v1`.
    pub fn new(
        endpoint: &str,
        model: &str,
        api_key: Option<String>,
        timeout: Duration,
    ) -> Result<DraftConfig, String> {
        let endpoint = parse_endpoint(endpoint)?;
        let model = model.trim();
        if model.is_empty() || model.len() > 200 {
            return Err("the drafting model's name must be 1–200 characters".into());
        }
        let api_key = api_key
            .map(|k| k.trim().to_string())
            .filter(|k| !k.is_empty());
        if api_key
            .as_ref()
            .is_some_and(|k| k.chars().any(|c| c.is_control() || !c.is_ascii()))
        {
            return Err("the drafting API key has characters a header cannot carry".into());
        }
        Ok(DraftConfig {
            endpoint,
            model: model.to_string(),
            api_key,
            timeout,
        })
    }

    pub fn endpoint(&self) -> String {
        self.endpoint.to_string()
    }
}

fn parse_endpoint(url: &str) -> Result<Endpoint, String> {
    let url = url.trim();
    let Some(rest) = url.strip_prefix("http://") else {
        return Err(format!(
            "the drafting endpoint must be an http:// URL of a model server beside kefu (got {url:?})"
        ));
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    if authority.contains('@') {
        // Never echo it: the part before '@' is a password.
        return Err(
            "the drafting endpoint must not carry credentials; put the key in KEFU_DRAFT_API_KEY"
                .into(),
        );
    }
    if authority.is_empty() {
        return Err(format!("the drafting endpoint {url:?} has no host"));
    }
    if path.contains(['?', '#']) || path.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "the drafting endpoint {url:?} must be a plain base URL (no query, fragment or spaces)"
        ));
    }
    let bad_port = || format!("the drafting endpoint {url:?} has a bad port");
    let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
        // [::1]:8080
        let (host, after) = bracketed
            .split_once(']')
            .ok_or_else(|| format!("the drafting endpoint {url:?} has a bad host"))?;
        match after.strip_prefix(':') {
            Some(port) => (host, port.parse::<u16>().map_err(|_| bad_port())?),
            None if after.is_empty() => (host, 80),
            None => return Err(bad_port()),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, port.parse::<u16>().map_err(|_| bad_port())?),
            None => (authority, 80),
        }
    };
    if host.is_empty() {
        return Err(format!("the drafting endpoint {url:?} has no host"));
    }
    Ok(Endpoint {
        host: host.to_string(),
        port,
        base_path: path.trim_end_matches('/').to_string(),
    })
}

/// One message of the conversation sent to the model.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ChatMessage {
    pub role: &'static str,
    pub content: String,
}

/// Why no draft came back. The message is for the agent; it names no secret.
#[derive(Debug)]
pub struct DraftError(pub String);

#[derive(Deserialize)]
struct Completion {
    choices: Vec<Choice>,
    #[serde(default)]
    model: Option<String>,
}

#[derive(Deserialize)]
struct Choice {
    message: ChoiceMessage,
}

#[derive(Deserialize)]
struct ChoiceMessage {
    #[serde(default)]
    content: Option<String>,
}

/// The draft and the model that wrote it.
#[derive(Debug, Clone)]
pub struct Draft {
    pub text: String,
    pub model: String,
}

/// The largest answer read from the model server.
const MAX_ANSWER_BYTES: usize = 1 << 20;

/// Asks the model server for a completion of `messages`.
pub async fn complete(config: &DraftConfig, messages: &[ChatMessage]) -> Result<Draft, DraftError> {
    match tokio::time::timeout(config.timeout, request(config, messages)).await {
        Ok(result) => result,
        Err(_) => Err(DraftError(format!(
            "the drafting model server at {} did not answer within {} s",
            config.endpoint,
            config.timeout.as_secs()
        ))),
    }
}

async fn request(config: &DraftConfig, messages: &[ChatMessage]) -> Result<Draft, DraftError> {
    let endpoint = &config.endpoint;
    let unreachable = |e: &dyn std::fmt::Display| {
        DraftError(format!(
            "cannot reach the drafting model server at {endpoint}: {e}"
        ))
    };
    let stream = tokio::net::TcpStream::connect((endpoint.host.as_str(), endpoint.port))
        .await
        .map_err(|e| unreachable(&e))?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|e| unreachable(&e))?;
    let connection = tokio::spawn(connection);
    let body = serde_json::json!({
        "model": config.model,
        "messages": messages,
        "temperature": 0.3,
        "max_tokens": 512,
        "stream": false,
    });
    let mut request = hyper::Request::builder()
        .method("POST")
        .uri(format!("{}/chat/completions", endpoint.base_path))
        .header("host", endpoint.authority())
        .header("content-type", "application/json")
        .header("accept", "application/json");
    if let Some(key) = &config.api_key {
        request = request.header("authorization", format!("Bearer {key}"));
    }
    let request = request
        .body(Full::new(Bytes::from(body.to_string())))
        .map_err(|e| unreachable(&e))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| unreachable(&e))?;
    let status = response.status();
    let limited = http_body_util::Limited::new(response.into_body(), MAX_ANSWER_BYTES);
    let bytes = limited
        .collect()
        .await
        .map_err(|e| DraftError(format!("reading the drafting model server's answer: {e}")))?
        .to_bytes();
    connection.abort();
    if !status.is_success() {
        // The body can say anything; the log keeps it, the agent sees the status.
        let detail: String = String::from_utf8_lossy(&bytes).chars().take(500).collect();
        tracing::warn!(%status, detail, "the drafting model server refused");
        return Err(DraftError(format!(
            "the drafting model server answered {status}"
        )));
    }
    let completion: Completion = serde_json::from_slice(&bytes).map_err(|e| {
        DraftError(format!(
            "the drafting model server's answer is not a chat completion: {e}"
        ))
    })?;
    let text = completion
        .choices
        .into_iter()
        .find_map(|c| c.message.content)
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
        .ok_or_else(|| DraftError("the drafting model server answered with no text".into()))?;
    Ok(Draft {
        text,
        model: completion.model.unwrap_or_else(|| config.model.clone()),
    })
}

/// What the model is told: who it drafts for and what kefu knows, then the conversation.
pub fn prompt(
    language: &str,
    transcript: &[(bool, String)],
    knowledge: &[String],
    strategy: Option<&str>,
    sentiment: Option<&str>,
) -> Vec<ChatMessage> {
    let mut system = String::new();
    if language == "zh" {
        system.push_str(
            "你是客服坐席的助手。请为坐席起草一条回复客户的消息，用简体中文，礼貌、具体、简短；\
             只使用下面给出的知识库内容作为事实依据，不确定的事情不要承诺，需要核实时请说明会核实。\
             只输出回复正文。\n",
        );
        if !knowledge.is_empty() {
            system.push_str("\n知识库中相关的回答：\n");
        }
    } else {
        system.push_str(
            "You assist a customer service agent. Draft one reply to the customer, in the \
             customer's language: polite, specific and short. Use only the knowledge-base \
             answers below as facts; promise nothing you are not sure of and say what will be \
             checked. Output the reply only.\n",
        );
        if !knowledge.is_empty() {
            system.push_str("\nRelevant knowledge-base answers:\n");
        }
    }
    for (i, answer) in knowledge.iter().enumerate() {
        system.push_str(&format!("{}. {}\n", i + 1, answer));
    }
    if let Some(strategy) = strategy {
        system.push_str(if language == "zh" {
            "\n与这位客户沟通的方式："
        } else {
            "\nHow to talk with this customer: "
        });
        system.push_str(strategy);
        system.push('\n');
    }
    if let Some(sentiment) = sentiment {
        system.push_str(if language == "zh" {
            "\n客户最后一条消息的情绪："
        } else {
            "\nThe customer's last message reads as: "
        });
        system.push_str(sentiment);
        system.push('\n');
    }
    let mut messages = vec![ChatMessage {
        role: "system",
        content: system,
    }];
    messages.extend(conversation(transcript));
    messages
}

/// The case's messages as chat turns the model servers accept: starting and ending with
/// the customer (the reply to draft is the next turn), one turn per side in a row.
fn conversation(transcript: &[(bool, String)]) -> Vec<ChatMessage> {
    let Some(last) = transcript.iter().rposition(|(customer, _)| *customer) else {
        return Vec::new();
    };
    let first = transcript[..=last]
        .iter()
        .position(|(customer, _)| *customer)
        .unwrap_or(last);
    let mut turns: Vec<ChatMessage> = Vec::new();
    for (from_customer, text) in &transcript[first..=last] {
        let role = if *from_customer { "user" } else { "assistant" };
        match turns.last_mut() {
            Some(turn) if turn.role == role => {
                turn.content.push('\n');
                turn.content.push_str(text);
            }
            _ => turns.push(ChatMessage {
                role,
                content: text.clone(),
            }),
        }
    }
    turns
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_plain_http_urls_with_a_host() {
        let e = parse_endpoint("http://127.0.0.1:8080/v1/").expect("parses");
        assert_eq!(
            e,
            Endpoint {
                host: "127.0.0.1".into(),
                port: 8080,
                base_path: "/v1".into()
            }
        );
        let e = parse_endpoint("http://models.local").expect("parses");
        assert_eq!((e.port, e.base_path.as_str()), (80, ""));
        let e = parse_endpoint("http://[::1]:11434/v1").expect("parses");
        assert_eq!((e.host.as_str(), e.port), ("::1", 11434));
        for bad in [
            "https://api.example.com/v1",
            "127.0.0.1:8080",
            "http://",
            "http://:80/v1",
            "http://host:notaport/v1",
            "http://user:secret@host/v1",
            "http://host/v1?key=1",
            "http://host/v1#x",
        ] {
            assert!(parse_endpoint(bad).is_err(), "{bad}");
        }
        let refused = parse_endpoint("http://user:secret@host/v1").expect_err("refused");
        assert!(!refused.contains("secret"), "{refused}");
        assert_eq!(
            parse_endpoint("http://[::1]:11434/v1").map(|e| e.to_string()),
            Ok("http://[::1]:11434/v1".to_string())
        );
    }

    #[test]
    fn the_key_never_shows_in_debug_output() {
        let c = DraftConfig::new(
            "http://127.0.0.1:8080/v1",
            "qwen",
            Some("sk-very-secret".into()),
            Duration::from_secs(5),
        )
        .expect("config");
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("sk-very-secret") && shown.contains("redacted"),
            "{shown}"
        );
        assert!(DraftConfig::new("http://h/v1", " ", None, Duration::from_secs(1)).is_err());
    }

    #[test]
    fn the_prompt_carries_knowledge_strategy_and_the_conversation() {
        let m = prompt(
            "zh",
            &[
                (true, "退款什么时候到账？".into()),
                (false, "您好，正在查询".into()),
            ],
            &["退款1-3个工作日到账".into()],
            Some("先讲结论"),
            Some("negative"),
        );
        // The conversation ends with the customer: the agent's last line is not a turn to
        // continue.
        assert_eq!(m.len(), 2);
        assert!(m[0].content.contains("退款1-3个工作日到账") && m[0].content.contains("先讲结论"));
        assert_eq!(m[1].role, "user");
        let turns = conversation(&[
            (false, "您好".into()),
            (true, "在吗".into()),
            (true, "订单123".into()),
            (false, "在的".into()),
            (true, "什么时候发货".into()),
            (false, "稍等".into()),
        ]);
        let roles: Vec<&str> = turns.iter().map(|t| t.role).collect();
        assert_eq!(roles, ["user", "assistant", "user"]);
        assert_eq!(turns[0].content, "在吗\n订单123");
        assert!(conversation(&[(false, "您好".into())]).is_empty());
        let m = prompt("en", &[], &[], None, None);
        assert!(m[0].content.starts_with("You assist"));
    }
}
