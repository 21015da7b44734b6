//! `ConsoleClient`: a console WebSocket client speaking the `/ws` protocol, for protocol tests.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use node::api::console::{ClientMessage, ServerMessage};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub struct ConsoleClient {
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl ConsoleClient {
    /// Connects to `addr` and sends the hello.
    pub async fn connect(addr: &str, token: &str, scope: Option<&str>, since: Option<u64>) -> ConsoleClient {
        let (socket, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws")).await.expect("WebSocket connect");
        let mut client = ConsoleClient { socket };
        let hello = ClientMessage::Hello { token: token.to_owned(), scope: scope.map(str::to_owned), since };
        client.send(&hello).await;
        client
    }

    /// The next JSON message before `deadline`; `None` when the server closed. Panics at the
    /// deadline, naming `what` was awaited and `timeout`.
    async fn message_before(&mut self, deadline: tokio::time::Instant, what: &str, timeout: Duration) -> Option<Value> {
        loop {
            let frame = tokio::time::timeout_at(deadline, self.socket.next())
                .await
                .unwrap_or_else(|_| panic!("no {what} within {timeout:?}"));
            match frame {
                Some(Ok(Message::Text(text))) => {
                    // Every message the server sends is one of the protocol's.
                    if let Err(error) = serde_json::from_str::<ServerMessage<Value>>(&text) {
                        panic!("not a console protocol message ({error}): {text}");
                    }
                    return Some(serde_json::from_str(&text).expect("JSON message"));
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return None,
                Some(Ok(_)) => {}
            }
        }
    }

    /// The next protocol message other than a heartbeat; `None` when the server closed.
    pub async fn next(&mut self, timeout: Duration) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let value = self.message_before(deadline, "console message", timeout).await?;
            if value["type"] != "heartbeat" {
                return Some(value);
            }
        }
    }

    /// The next heartbeat, skipping any other message; panics after `timeout`.
    pub async fn heartbeat(&mut self, timeout: Duration) -> Value {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let value = self
                .message_before(deadline, "heartbeat", timeout)
                .await
                .expect("closed while waiting for a heartbeat");
            if value["type"] == "heartbeat" {
                return value;
            }
        }
    }

    /// The next message, which must be of `kind`.
    pub async fn expect(&mut self, kind: &str) -> Value {
        let message =
            self.next(Duration::from_secs(10)).await.unwrap_or_else(|| panic!("closed while expecting {kind}"));
        assert_eq!(message["type"], kind, "{message}");
        message
    }

    pub async fn ping(&mut self) {
        self.send(&ClientMessage::Ping).await;
    }

    async fn send(&mut self, message: &ClientMessage) {
        let text = serde_json::to_string(message).expect("client messages encode");
        self.socket.send(Message::Text(text.into())).await.expect("send to the console socket");
    }

    pub async fn close(mut self) {
        let _ = self.socket.close(None).await;
    }
}
