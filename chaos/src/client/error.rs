//! Client errors; an API error keeps Toxiproxy's `{"error","status"}` body so callers can match on it.

/// What went wrong talking to a Toxiproxy server.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The HTTP client could not be built.
    #[error("cannot build the HTTP client: {0}")]
    Build(#[source] reqwest::Error),
    /// The server could not be reached (refused, reset, timed out).
    #[error("cannot reach Toxiproxy at {url}: {source}")]
    Transport {
        /// The request URL.
        url: String,
        /// The cause.
        #[source]
        source: reqwest::Error,
    },
    /// The server answered with Toxiproxy's error body.
    #[error("Toxiproxy answered {status}: {message}")]
    Api {
        /// HTTP status.
        status: u16,
        /// The `error` member, e.g. `proxy not found`.
        message: String,
        /// The whole body (for `/populate` it also lists the proxies created before the error).
        body: String,
    },
    /// The server answered something else than expected.
    #[error("unexpected answer {status} from {url}: {body}")]
    Unexpected {
        /// The request URL.
        url: String,
        /// HTTP status.
        status: u16,
        /// The body.
        body: String,
    },
    /// A success body that does not decode.
    #[error("cannot decode the answer from {url}: {source}")]
    Decode {
        /// The request URL.
        url: String,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
}

impl ClientError {
    /// The HTTP status, when the server answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Api { status, .. } | Self::Unexpected { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// A 404 (`proxy not found` or `toxic not found`).
    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404)
    }

    /// A 409 (`proxy already exists` or `toxic already exists`).
    pub fn is_conflict(&self) -> bool {
        self.status() == Some(409)
    }

    /// The server could not be reached at all.
    pub fn is_unreachable(&self) -> bool {
        matches!(self, Self::Transport { .. })
    }
}
