//! Sources of events.
