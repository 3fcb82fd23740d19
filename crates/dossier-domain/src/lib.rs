//! Pure domain of Dossier: what an incident, a story and an event are, and the rules that
//! correlate incidents into stories. No IO lives here: no tokio, no database, no HTTP.

pub mod access;
pub mod context;
pub mod correlate;
pub mod criticality;
pub mod display;
pub mod entities;
pub mod event;
pub mod expiry;
pub mod files;
pub mod incident;
pub mod net;
pub mod next_steps;
pub mod producer;
pub mod story;
pub mod summary;
pub mod time;
pub mod vocabulary;

pub use incident::{Device, FileInfo, Incident, MitreTechnique};
pub use producer::{Judged, Producer, ProducerSpec};
