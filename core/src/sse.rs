//! Server-sent events framing for Streamable HTTP responses.
