//! Where results go, besides the task store: the tasks topic and the dead-letter topic.

pub mod kafka;
