//! Reading event files back: every record's checksums checked, every record parsed.

use crate::data::TFRecordReader;
use crate::proto::tf;
use crate::{Error, Result};
use prost::Message;
use std::path::Path;

/// Reads all events of an event file. A missing file, a bad checksum, a truncated record
/// or a record that is not an `Event` is an error naming the file and the record.
pub fn read_events(path: &Path) -> Result<Vec<tf::Event>> {
    TFRecordReader::open(path)?
        .enumerate()
        .map(|(i, data)| {
            tf::Event::decode(&data?[..]).map_err(|e| {
                Error::Parse(format!(
                    "{}: record {i} is not an Event: {e}",
                    path.display()
                ))
            })
        })
        .collect()
}
