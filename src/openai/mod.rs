//! OpenAI API shapes: request types that keep unknown fields, error bodies, the SSE
//! parser/writer and model-list objects. Pure data and parsing: no I/O happens here.

pub mod error;
pub mod models;
pub mod request;
pub mod responses;
pub mod sse;
pub mod usage;

pub use error::{ApiError, ErrorKind};
pub use request::{ApiRequest, Endpoint};
