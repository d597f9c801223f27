//! [`FileWriter`]: TensorFlow 1's `tf.summary.FileWriter`, writing an event file that
//! TensorBoard reads.

use crate::data::write_framed;
use crate::graph::Graph;
use crate::ops::summary::histogram::Histogram;
use crate::ops::summary::value;
use crate::proto::{graph_to_proto, shape_to_proto, tf};
use crate::{Error, Result, Tensor};
use prost::Message;
use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The `file_version` of the first record of every event file.
pub const FILE_VERSION: &str = "brain.Event:2";

/// Events kept in memory before they are written (TensorFlow's `max_queue` default).
const MAX_QUEUE: usize = 10;
/// Longest time events wait in memory, checked when an event is added (TensorFlow's
/// `flush_secs` default).
const FLUSH_EVERY: Duration = Duration::from_secs(120);

/// Writes `events.out.tfevents.<seconds>.<host>` in a log directory, as
/// `tf.compat.v1.summary.FileWriter` does: scalars, histograms, text and the graph, which
/// `tensorboard --logdir DIR` then shows.
///
/// Events are buffered as whole framed records and written with one `write` per flush (on
/// [`flush`](Self::flush), every 10 events or 2 minutes, and on drop); a failed write is cut
/// back to the last whole record, so a reader only ever sees whole records.
///
/// ```
/// # fn main() -> rustflow::Result<()> {
/// use rustflow::summary::FileWriter;
/// let dir = std::env::temp_dir().join(format!("rustflow-doc-{}", std::process::id()));
/// let mut w = FileWriter::new(&dir)?;
/// w.add_scalar("loss", 0.25, 1)?;
/// w.add_histogram("weights", [0.5, -1.0, 2.0], 1)?;
/// w.flush()?;
/// let events = rustflow::summary::read_events(w.path())?;
/// assert_eq!(events.len(), 3); // file_version, loss, weights
/// # std::fs::remove_dir_all(&dir).ok();
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct FileWriter {
    path: PathBuf,
    file: File,
    /// Whole framed records not yet written.
    pending: Vec<u8>,
    queued: usize,
    last_flush: Instant,
    /// File length after the last successful flush (whole records only).
    written: u64,
}

impl FileWriter {
    /// Creates `logdir` (and its parents) if needed and a new event file in it, whose first
    /// record (`file_version: "brain.Event:2"`) is written at once. If a file of that name
    /// exists (two writers in the same second), `.1`, `.2`, ... is appended.
    pub fn new(logdir: impl AsRef<Path>) -> Result<Self> {
        let logdir = logdir.as_ref();
        std::fs::create_dir_all(logdir)
            .map_err(|e| Error::Io(format!("{}: {e}", logdir.display())))?;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let host = gethostname::gethostname()
            .to_string_lossy()
            .replace(['/', '\\'], "_");
        let base = format!("events.out.tfevents.{:010}.{host}", now.as_secs());
        let (path, file) = (0..1000)
            .find_map(|n| {
                let name = match n {
                    0 => base.clone(),
                    n => format!("{base}.{n}"),
                };
                let path = logdir.join(name);
                match OpenOptions::new().write(true).create_new(true).open(&path) {
                    Ok(f) => Some(Ok((path, f))),
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => None,
                    Err(e) => Some(Err(Error::Io(format!("{}: {e}", path.display())))),
                }
            })
            .unwrap_or_else(|| {
                Err(Error::Io(format!(
                    "{}: no free name for {base}",
                    logdir.display()
                )))
            })?;
        let mut w = FileWriter {
            path,
            file,
            pending: Vec::new(),
            queued: 0,
            last_flush: Instant::now(),
            written: 0,
        };
        w.add_event(tf::Event {
            what: Some(tf::event::What::FileVersion(FILE_VERSION.into())),
            ..Default::default()
        })?;
        w.flush()?;
        Ok(w)
    }

    /// The event file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Queues an event (its `wall_time` set to now when it is 0).
    pub fn add_event(&mut self, mut event: tf::Event) -> Result<()> {
        if event.wall_time == 0.0 {
            event.wall_time = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs_f64();
        }
        write_framed(&mut self.pending, &event.encode_to_vec())
            .expect("writing to a Vec cannot fail");
        self.queued += 1;
        if self.queued >= MAX_QUEUE || self.last_flush.elapsed() >= FLUSH_EVERY {
            self.flush()?;
        }
        Ok(())
    }

    /// Queues a `Summary` at `step` (what a fetched summary op returns, once parsed).
    pub fn add_summary(&mut self, summary: tf::Summary, step: i64) -> Result<()> {
        self.add_event(tf::Event {
            step,
            what: Some(tf::event::What::Summary(summary)),
            ..Default::default()
        })
    }

    /// Queues a serialized `Summary` at `step`; bytes that are not a `Summary` are an error.
    pub fn add_summary_bytes(&mut self, bytes: &[u8], step: i64) -> Result<()> {
        let summary = tf::Summary::decode(bytes)
            .map_err(|e| Error::Parse(format!("not a serialized Summary: {e}")))?;
        self.add_summary(summary, step)
    }

    /// Queues a scalar (TensorBoard's Scalars tab).
    pub fn add_scalar(&mut self, tag: &str, value: f32, step: i64) -> Result<()> {
        self.add_values(vec![value::scalar(tag, value)], step)
    }

    /// Queues a histogram of `values` with TensorFlow's buckets (Histograms and
    /// Distributions tabs). A NaN or infinite value is an error.
    pub fn add_histogram(
        &mut self,
        tag: &str,
        values: impl IntoIterator<Item = f64>,
        step: i64,
    ) -> Result<()> {
        let h = Histogram::from_values(tag, values)?;
        self.add_values(vec![value::histogram(tag, &h)], step)
    }

    /// Queues a histogram of a tensor's elements (any numeric dtype).
    pub fn add_tensor_histogram(&mut self, tag: &str, t: &Tensor, step: i64) -> Result<()> {
        self.add_histogram(tag, t.to_f64_vec(), step)
    }

    /// Queues text, shown as Markdown in TensorBoard's Text tab.
    pub fn add_text(&mut self, tag: &str, text: &str, step: i64) -> Result<()> {
        self.add_values(vec![value::text(tag, text)], step)
    }

    /// Queues the graph (TensorBoard's Graphs tab: name scopes as collapsible boxes, edges
    /// labelled with the shapes recorded in each node's `_output_shapes`).
    pub fn add_graph(&mut self, g: &Graph) -> Result<()> {
        let mut def = graph_to_proto(g);
        for (nd, (_, node)) in def.node.iter_mut().zip(g.nodes()) {
            let shapes = node
                .outputs()
                .iter()
                .map(|s| shape_to_proto(&s.shape))
                .collect();
            nd.attr
                .entry("_output_shapes".into())
                .or_insert_with(|| tf::AttrValue {
                    value: Some(tf::attr_value::Value::List(tf::attr_value::ListValue {
                        shape: shapes,
                        ..Default::default()
                    })),
                });
        }
        self.add_event(tf::Event {
            what: Some(tf::event::What::GraphDef(def.encode_to_vec())),
            ..Default::default()
        })
    }

    /// Writes every queued event to the file, as one write of whole records. On failure the
    /// file is cut back to its last whole record and the error names the file.
    pub fn flush(&mut self) -> Result<()> {
        self.last_flush = Instant::now();
        if self.pending.is_empty() {
            return Ok(());
        }
        let result = self
            .file
            .write_all(&self.pending)
            .and_then(|()| self.file.flush());
        if let Err(e) = result {
            // Drop a partly written record so that readers see whole records only.
            let _ = self.file.set_len(self.written);
            let _ = self.file.seek(SeekFrom::Start(self.written));
            return Err(Error::Io(format!("{}: {e}", self.path.display())));
        }
        self.written += self.pending.len() as u64;
        self.pending.clear();
        self.queued = 0;
        Ok(())
    }

    fn add_values(&mut self, value: Vec<tf::summary::Value>, step: i64) -> Result<()> {
        self.add_summary(tf::Summary { value }, step)
    }
}

impl Drop for FileWriter {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}
