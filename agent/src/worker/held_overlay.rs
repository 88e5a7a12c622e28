//! The overlay this agent was last given and the overlay index it is as of. The assignments
//! poll names that index, so the controller sends the overlay only when it changed, and then
//! only the peers that changed (`Overlay::changed_since`): in a cluster of thousands of nodes
//! the whole peer list is most of every answer.

use hoist_proto::node::Overlay;

#[derive(Debug, Default)]
pub struct HeldOverlay {
    view: Option<Overlay>,
    index: u64,
}

/// What an answer did to the held overlay.
#[derive(Debug, PartialEq)]
pub enum Taken<'a> {
    /// Nothing new: the held overlay (if any) stands.
    Same,
    /// A new whole overlay, to wire.
    New(&'a Overlay),
    /// Changes that do not add up with what is held (a peer was removed): the next poll asks
    /// for the whole overlay, at once.
    AskWhole,
}

impl HeldOverlay {
    /// The overlay index to name in the next poll; 0 when none is held (the whole overlay).
    pub fn index(&self) -> u64 {
        if self.view.is_some() {
            self.index
        } else {
            0
        }
    }

    /// Forgets the held overlay (the node registered again).
    pub fn forget(&mut self) {
        *self = HeldOverlay::default();
    }

    /// Takes an answer's overlay (`None`: left out, or none for this node) and overlay index.
    pub fn take(&mut self, overlay: Option<Overlay>, at: u64) -> Taken<'_> {
        match overlay.map(|o| o.merge(self.view.as_ref())) {
            None => {
                self.index = at;
                Taken::Same
            }
            Some(Some(view)) => {
                self.index = at;
                Taken::New(self.view.insert(view))
            }
            Some(None) => {
                self.forget();
                Taken::AskWhole
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hoist_proto::format::samples::{overlay_peer as peer, overlay_with as overlay};

    #[test]
    fn the_poll_names_the_index_of_the_overlay_held() {
        let mut held = HeldOverlay::default();
        assert_eq!(held.take(None, 5), Taken::Same);
        assert_eq!(held.index(), 0, "nothing held: ask for the whole overlay");
        let whole = overlay(vec![peer("a", 3)], 0, 0);
        assert_eq!(held.take(Some(whole.clone()), 6), Taken::New(&whole));
        assert_eq!(held.index(), 6);
        assert_eq!(held.take(None, 6), Taken::Same);
        assert_eq!(held.index(), 6);

        // Changes merge into the whole overlay.
        let changes = overlay(vec![peer("b", 7)], 6, 2);
        let merged = overlay(vec![peer("a", 3), peer("b", 7)], 0, 0);
        assert_eq!(held.take(Some(changes), 7), Taken::New(&merged));
        assert_eq!(held.index(), 7);

        // "a" removed: the changes do not add up, and the next poll asks for the whole one.
        let changes = overlay(vec![peer("c", 8)], 7, 2);
        assert_eq!(held.take(Some(changes), 8), Taken::AskWhole);
        assert_eq!(held.index(), 0);

        held.take(Some(whole), 9);
        held.forget();
        assert_eq!(held.index(), 0);
    }
}
