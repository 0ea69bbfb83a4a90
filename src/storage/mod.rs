//! Report storage in Azure Blob Storage: where the account is (`connection`), the container
//! and its blobs (`blobs`), download links (`links`, `sas`) and the documents the service
//! keeps next to the reports (`runs`).

pub mod blobs;
pub mod connection;
pub mod error;
pub mod links;
pub mod runs;
pub mod sas;
pub mod sink;

pub use blobs::{BlobHeaders, BlobStore, StorageAccess, StoreOptions};
pub use error::StorageError;
pub use links::SignedLink;
pub use runs::RunStore;
pub use sink::{BlobSink, report_blob_names};
