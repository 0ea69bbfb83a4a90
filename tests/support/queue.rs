//! Just enough of the Storage Queue REST API to play the Functions host's part: create a
//! queue, put, get (with a visibility timeout), delete and count messages. Authorised with an
//! account SAS signed by patreport's own signer.

use base64::Engine;
use patreport::storage::connection::{DEV_ACCOUNT, DEV_ACCOUNT_KEY};
use patreport::storage::sas::{AccountSas, Protocols};
use time::{Duration, OffsetDateTime};

#[derive(Clone)]
pub struct QueueClient {
    endpoint: String,
    http: reqwest::Client,
}

/// A received message.
#[derive(Debug, Clone)]
pub struct QueueMessage {
    pub id: String,
    pub pop_receipt: String,
    pub dequeue_count: u32,
    pub insertion_time: String,
    pub expiration_time: String,
    pub next_visible: String,
    /// `MessageText` as stored (base64 when written the way the Functions host writes).
    pub text: String,
}

impl QueueClient {
    pub fn new(endpoint: &str) -> Self {
        Self {
            endpoint: endpoint.trim_end_matches('/').to_owned(),
            http: reqwest::Client::new(),
        }
    }

    fn sas() -> String {
        let key = base64::engine::general_purpose::STANDARD
            .decode(DEV_ACCOUNT_KEY)
            .expect("dev key");
        let now = OffsetDateTime::now_utc();
        AccountSas {
            account: DEV_ACCOUNT,
            services: "q",
            resource_types: "sco",
            permissions: "rwdlacup",
            start: now - Duration::minutes(5),
            expiry: now + Duration::hours(1),
            protocols: Protocols::HttpsAndHttp,
        }
        .sign(&key)
    }

    fn url(&self, path: &str, query: &str) -> String {
        let sep = if query.is_empty() { "" } else { "&" };
        format!("{}/{path}?{query}{sep}{}", self.endpoint, Self::sas())
    }

    pub async fn create(&self, queue: &str) {
        let r = self
            .http
            .put(self.url(queue, ""))
            .header("content-length", "0")
            .send()
            .await
            .expect("create queue");
        assert!(
            r.status().is_success() || r.status() == 409,
            "create queue {queue}: {}",
            r.status()
        );
    }

    /// Put a message whose `MessageText` is `text` (already encoded as the reader expects).
    pub async fn put(&self, queue: &str, text: &str) {
        self.create(queue).await;
        let body = format!(
            "<QueueMessage><MessageText>{}</MessageText></QueueMessage>",
            xml_escape(text)
        );
        let r = self
            .http
            .post(self.url(&format!("{queue}/messages"), ""))
            .body(body)
            .send()
            .await
            .expect("put message");
        assert_eq!(
            r.status(),
            201,
            "put message on {queue}: {}",
            r.text().await.unwrap_or_default()
        );
    }

    /// Get one message, hidden for `visibility_secs`.
    pub async fn get(&self, queue: &str, visibility_secs: u32) -> Option<QueueMessage> {
        let url = self.url(
            &format!("{queue}/messages"),
            &format!("numofmessages=1&visibilitytimeout={visibility_secs}"),
        );
        let r = self.http.get(url).send().await.expect("get messages");
        if r.status() == 404 {
            return None;
        }
        assert!(
            r.status().is_success(),
            "get messages from {queue}: {}",
            r.status()
        );
        let xml = r.text().await.expect("messages body");
        let text = tag(&xml, "MessageText")?;
        Some(QueueMessage {
            id: tag(&xml, "MessageId")?,
            pop_receipt: tag(&xml, "PopReceipt")?,
            dequeue_count: tag(&xml, "DequeueCount")?.parse().ok()?,
            insertion_time: tag(&xml, "InsertionTime").unwrap_or_default(),
            expiration_time: tag(&xml, "ExpirationTime").unwrap_or_default(),
            next_visible: tag(&xml, "TimeNextVisible").unwrap_or_default(),
            text: xml_unescape(&text),
        })
    }

    pub async fn delete(&self, queue: &str, message: &QueueMessage) {
        let query = format!(
            "popreceipt={}",
            patreport::storage::sas::encode(&message.pop_receipt)
        );
        let r = self
            .http
            .delete(self.url(&format!("{queue}/messages/{}", message.id), &query))
            .send()
            .await
            .expect("delete");
        assert!(
            r.status().is_success(),
            "delete message from {queue}: {}",
            r.status()
        );
    }

    /// Messages in the queue, visible or not (0 for a queue that does not exist).
    pub async fn count(&self, queue: &str) -> usize {
        let r = self
            .http
            .get(self.url(queue, "comp=metadata"))
            .send()
            .await
            .expect("queue metadata");
        if r.status() == 404 {
            return 0;
        }
        r.headers()
            .get("x-ms-approximate-messages-count")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }

    /// The decoded texts of the visible messages, without taking them.
    pub async fn peek_texts(&self, queue: &str) -> Vec<String> {
        let r = self
            .http
            .get(self.url(
                &format!("{queue}/messages"),
                "peekonly=true&numofmessages=32",
            ))
            .send()
            .await
            .expect("peek");
        if r.status() == 404 {
            return Vec::new();
        }
        let xml = r.text().await.unwrap_or_default();
        xml.split("<MessageText>")
            .skip(1)
            .filter_map(|part| part.split("</MessageText>").next())
            .map(|t| decode_base64_text(&xml_unescape(t)))
            .collect()
    }
}

/// base64 → UTF-8 text (lossy), the way the host reads messages with `messageEncoding: base64`.
pub fn decode_base64_text(text: &str) -> String {
    base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_else(|_| text.to_owned())
}

fn tag(xml: &str, name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find(&close)? + start;
    Some(xml[start..end].to_owned())
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn xml_unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}
