//! `AuditService`: signed checkpoints, inclusion and consistency proofs, and tiles
//! (docs/api.md, "Verifiable history"). Every sled read runs on the blocking pool.

use tonic::{Request, Response, Status};

use super::pb;
use super::pb::audit_service_server::AuditService;
use super::status;
use crate::audit::{Checkpoints, Signed};
use crate::log::{Log, LogError};
use crate::merkle::tile::{tile_path, TILE_WIDTH};

/// The AuditService implementation.
#[derive(Clone)]
pub struct Audit {
    log: Log,
    checkpoints: Checkpoints,
}

impl Audit {
    /// Serves the proofs of `log` and the checkpoints signed by `checkpoints`.
    pub fn new(log: Log, checkpoints: Checkpoints) -> Audit {
        Audit { log, checkpoints }
    }

    /// Runs `read` on the log off the async threads.
    async fn blocking<T: Send + 'static>(
        &self,
        read: impl FnOnce(&Log) -> Result<T, LogError> + Send + 'static,
    ) -> Result<T, LogError> {
        let log = self.log.clone();
        tokio::task::spawn_blocking(move || read(&log))
            .await
            .map_err(|error| LogError::Io(std::io::Error::other(error.to_string())))?
    }

    /// OUT_OF_RANGE naming `field` when `value` is past the head.
    fn check_size(&self, field: &str, value: u64) -> Result<(), Status> {
        let head = self.log.head();
        if value > head {
            return Err(status::out_of_range_field(
                field,
                format!("{value} is past the head of the log ({head})"),
            ));
        }
        Ok(())
    }

    fn response(&self, signed: Signed) -> pb::GetCheckpointResponse {
        pb::GetCheckpointResponse {
            note: signed.note,
            origin: signed.checkpoint.origin,
            tree_size: signed.checkpoint.size,
            root_hash: signed.checkpoint.root.to_vec(),
            verifier_key: self.checkpoints.verifier().to_vkey(),
        }
    }
}

fn hashes(hashes: Vec<crate::merkle::Hash>) -> Vec<Vec<u8>> {
    hashes.into_iter().map(|hash| hash.to_vec()).collect()
}

#[tonic::async_trait]
impl AuditService for Audit {
    async fn get_checkpoint(
        &self,
        request: Request<pb::GetCheckpointRequest>,
    ) -> Result<Response<pb::GetCheckpointResponse>, Status> {
        let wait = super::query::deadline_of(&request);
        let position = request.into_inner().at_or_after_position;
        if let Some(reason) = self.checkpoints.refused() {
            let latest = self.checkpoints.latest().map_or(0, |s| s.checkpoint.size);
            if position > latest || position == 0 && self.log.head() > latest {
                return Err(Status::data_loss(status::echo(&reason).into_owned()));
            }
        }
        let found = match position {
            0 => self.checkpoints.latest(),
            _ => self
                .checkpoints
                .at_or_after(position, wait)
                .await
                .map_err(|error| status::internal("reading checkpoints", error))?,
        };
        match found {
            Some(signed) => Ok(Response::new(self.response(signed))),
            None => Err(Status::unavailable(format!(
                "no checkpoint covers position {position} yet (head {}); retry or allow a longer deadline",
                self.log.head()
            ))),
        }
    }

    async fn get_inclusion_proof(
        &self,
        request: Request<pb::GetInclusionProofRequest>,
    ) -> Result<Response<pb::GetInclusionProofResponse>, Status> {
        let pb::GetInclusionProofRequest { position, tree_size } = request.into_inner();
        if tree_size == 0 {
            return Err(status::invalid_field("tree_size", "must be at least 1"));
        }
        self.check_size("tree_size", tree_size)?;
        if position == 0 || position > tree_size {
            return Err(status::out_of_range_field(
                "position",
                format!("{position} is not in a tree of {tree_size} records (1..={tree_size})"),
            ));
        }
        let (leaf, proof) = self
            .blocking(move |log| log.inclusion(position, tree_size))
            .await
            .map_err(status::from_log_error)?;
        Ok(Response::new(pb::GetInclusionProofResponse {
            position,
            tree_size,
            leaf_input: leaf.input,
            leaf_hash: leaf.hash.to_vec(),
            hashes: hashes(proof),
        }))
    }

    async fn get_consistency_proof(
        &self,
        request: Request<pb::GetConsistencyProofRequest>,
    ) -> Result<Response<pb::GetConsistencyProofResponse>, Status> {
        let pb::GetConsistencyProofRequest {
            first_size,
            second_size,
        } = request.into_inner();
        self.check_size("second_size", second_size)?;
        // first_size past second_size: the log's own check answers INVALID_ARGUMENT on it.
        let proof = self
            .blocking(move |log| log.consistency_proof(first_size, second_size))
            .await
            .map_err(status::from_log_error)?;
        Ok(Response::new(pb::GetConsistencyProofResponse {
            first_size,
            second_size,
            hashes: hashes(proof),
        }))
    }

    async fn get_tile(
        &self,
        request: Request<pb::GetTileRequest>,
    ) -> Result<Response<pb::GetTileResponse>, Status> {
        let pb::GetTileRequest { level, index, width } = request.into_inner();
        let width = match u64::from(width) {
            0 => TILE_WIDTH,
            w if w > TILE_WIDTH => {
                return Err(status::invalid_field(
                    "width",
                    format!("{w} is over {TILE_WIDTH}"),
                ));
            }
            w => w,
        };
        let available = crate::merkle::tile::level_width(self.log.head(), level);
        let end = index.saturating_mul(TILE_WIDTH).saturating_add(width);
        if end > available {
            return Err(status::out_of_range_field(
                "index",
                format!("tile {level}/{index} of width {width} needs {end} hashes at level {level}; the tree has {available}"),
            ));
        }
        let bytes = self
            .blocking(move |log| log.tile(level, index, width))
            .await
            .map_err(status::from_log_error)?;
        Ok(Response::new(pb::GetTileResponse {
            hashes: bytes,
            path: tile_path(level, index, width),
        }))
    }
}
