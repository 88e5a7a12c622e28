//! Runs openraft's storage conformance suite on the redb log store and state machine.

use super::log_store::LogStore;
use super::state_machine::Machine;
use super::store::Store;
use super::TypeConfig;
use openraft::testing::{StoreBuilder, Suite};
use openraft::StorageError;

struct Builder;

impl StoreBuilder<TypeConfig, LogStore, Machine, tempfile::TempDir> for Builder {
    async fn build(&self) -> Result<(tempfile::TempDir, LogStore, Machine), StorageError<u64>> {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open store");
        let machine = Machine::open(store.clone()).expect("open machine");
        Ok((
            dir,
            LogStore::open(
                store,
                super::stall::StallGuard::new(std::time::Duration::from_millis(250)),
            )
            .expect("open log"),
            machine,
        ))
    }
}

#[test]
fn openraft_storage_suite() {
    Suite::test_all(Builder).expect("openraft storage suite");
}
