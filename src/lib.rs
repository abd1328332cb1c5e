pub mod event;
pub mod geo;
pub mod money;
pub mod time;
