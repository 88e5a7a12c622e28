//! Hoist controller: added by the controller issue.
