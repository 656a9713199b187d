//! A private NATS namespace per test: its own subject prefix and stream names.

use runledger_bus::BusNames;

/// NATS names no other test uses; `cleanup` deletes the streams.
#[derive(Debug, Clone)]
pub struct TestNats {
    /// The server.
    pub url: String,
    /// Subject and stream names under a random prefix.
    pub names: BusNames,
    /// A connection.
    pub client: async_nats::Client,
}

impl TestNats {
    /// Connects to the shared server and picks a fresh prefix.
    pub async fn create() -> Self {
        let url = std::env::var("RUNLEDGER_TEST_NATS_URL")
            .unwrap_or_else(|_| "nats://127.0.0.1:4222".into());
        Self::create_at(&url).await
    }

    /// Connects to the server at `url` and picks a fresh prefix.
    pub async fn create_at(url: &str) -> Self {
        let url = url.to_owned();
        let prefix = format!("t{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
        let names = BusNames::new(&prefix).expect("valid prefix");
        let client = runledger_bus::connect(&url, "runledger-test")
            .await
            .expect("connect to NATS (is nats-server -js running?)");
        Self { url, names, client }
    }

    /// A JetStream context.
    pub fn jetstream(&self) -> async_nats::jetstream::Context {
        runledger_bus::jetstream(self.client.clone())
    }

    /// Deletes the test's streams.
    pub async fn cleanup(self) {
        let js = self.jetstream();
        let _ = js.delete_stream(self.names.commands_stream()).await;
        let _ = js.delete_stream(self.names.events_stream()).await;
    }
}
