//! Timing: samples, repetitions interleaved across workloads, medians,
//! settling the disk, directory sizes.

use std::path::Path;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use crate::error::{io_error, BenchError};
use crate::flushes::FlushCounter;

/// One repetition of a workload.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Sample {
    /// Time inside the clock.
    pub(crate) elapsed: Duration,
    /// Bytes written per event in this repetition.
    pub(crate) bytes_per_event: f64,
    /// Device cache flushes inside the clock, where they are counted.
    pub(crate) device_flushes: Option<u64>,
}

impl Sample {
    /// A repetition whose device flushes are not counted.
    pub(crate) fn new(elapsed: Duration, bytes_per_event: f64) -> Sample {
        Sample {
            elapsed,
            bytes_per_event,
            device_flushes: None,
        }
    }

    /// The same repetition with the device flushes inside its clock.
    pub(crate) fn with_device_flushes(self, device_flushes: Option<u64>) -> Sample {
        Sample { device_flushes, ..self }
    }
}

/// Device flushes between two readings of a counter (`None` when either
/// reading failed).
pub(crate) fn flushes_between(before: Option<u64>, after: Option<u64>) -> Option<u64> {
    after?.checked_sub(before?)
}

/// What one timed workload measured: every repetition, reported by median.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Measurement {
    /// Events (or steps, or events of the resumed run) per repetition.
    pub(crate) events: u64,
    /// Seconds of each repetition, in the order run.
    pub(crate) samples: Vec<f64>,
    /// Bytes written per event (logical unless the row says otherwise).
    pub(crate) bytes_per_event: f64,
    /// The median of each repetition's device flushes per event, when every
    /// repetition counted them.
    pub(crate) device_flushes_per_event: Option<f64>,
}

impl Measurement {
    /// A measurement of `events` events from `samples`.
    #[expect(
        clippy::needless_pass_by_value,
        reason = "takes the samples it summarises; every caller hands over a vector it is done with"
    )]
    pub(crate) fn new(events: u64, samples: Vec<Duration>, bytes_per_event: f64) -> Measurement {
        Measurement {
            events,
            samples: samples.iter().map(Duration::as_secs_f64).collect(),
            bytes_per_event,
            device_flushes_per_event: None,
        }
    }

    /// The same measurement with each repetition's device flushes (per
    /// repetition of `events` events); unchanged unless every one counted.
    #[expect(
        clippy::cast_precision_loss,
        reason = "reporting statistics: counts far below 2^52 become floats for display"
    )]
    pub(crate) fn with_device_flushes(mut self, flushes: &[Option<u64>]) -> Measurement {
        let per_event: Option<Vec<f64>> = flushes
            .iter()
            .map(|flushes| flushes.map(|flushes| flushes as f64 / self.events.max(1) as f64))
            .collect();
        self.device_flushes_per_event = per_event
            .filter(|values| !values.is_empty())
            .map(|values| median(&values));
        self
    }

    /// The median seconds of one repetition.
    pub(crate) fn seconds(&self) -> f64 {
        median(&self.samples)
    }
}

/// Runs `writers` threads, timed from a common start to the last one's end:
/// thread `index` first runs `prepare(index)` outside the clock (a failure
/// still reaches the start, so no thread waits forever), and what it returns
/// is the thread's timed work.
pub(crate) fn timed_writers<Prepare, Work>(
    writers: usize,
    workload: &'static str,
    prepare: Prepare,
) -> Result<Duration, BenchError>
where
    Prepare: Fn(usize) -> Result<Work, BenchError> + Sync,
    Work: FnOnce() -> Result<(), BenchError>,
{
    timed_writers_counting(writers, workload, None, prepare).map(|(elapsed, _)| elapsed)
}

/// [`timed_writers`], also counting the device flushes inside the clock.
pub(crate) fn timed_writers_counting<Prepare, Work>(
    writers: usize,
    workload: &'static str,
    counter: Option<&FlushCounter>,
    prepare: Prepare,
) -> Result<(Duration, Option<u64>), BenchError>
where
    Prepare: Fn(usize) -> Result<Work, BenchError> + Sync,
    Work: FnOnce() -> Result<(), BenchError>,
{
    let barrier = Barrier::new(writers + 1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..writers)
            .map(|index| {
                let (barrier, prepare) = (&barrier, &prepare);
                scope.spawn(move || -> Result<(), BenchError> {
                    let work = prepare(index);
                    barrier.wait();
                    work?()
                })
            })
            .collect();
        barrier.wait();
        let flushes = counter.and_then(FlushCounter::read);
        let started = Instant::now();
        for handle in handles {
            handle.join().map_err(|_| BenchError::Panicked { workload })??;
        }
        let elapsed = started.elapsed();
        Ok((elapsed, flushes_between(flushes, counter.and_then(FlushCounter::read))))
    })
}

/// A workload to repeat: its events per repetition and one repetition.
pub(crate) type Workload<'a> = (u64, Box<dyn FnMut() -> Result<Sample, BenchError> + 'a>);

/// Runs `repetitions` rounds of every workload, one repetition of each per
/// round and the disk settled before each, so that workloads compared with
/// each other see the same conditions (a disk still writing back what an
/// earlier workload left behind slows every sync after it).
pub(crate) fn interleaved<const N: usize>(
    root: &Path,
    repetitions: usize,
    workloads: [Workload<'_>; N],
) -> Result<[Measurement; N], BenchError> {
    let mut workloads = workloads;
    let mut samples: [Vec<Sample>; N] = std::array::from_fn(|_| Vec::with_capacity(repetitions));
    for _ in 0..repetitions {
        for ((_, repeat), samples) in workloads.iter_mut().zip(samples.iter_mut()) {
            settle(root)?;
            samples.push(repeat()?);
        }
    }
    let mut index = 0;
    Ok(workloads.map(|(events, _)| {
        let taken = std::mem::take(&mut samples[index]);
        index += 1;
        let bytes_per_event = taken.last().map_or(0.0, |sample| sample.bytes_per_event);
        let flushes: Vec<Option<u64>> = taken.iter().map(|sample| sample.device_flushes).collect();
        Measurement::new(
            events,
            taken.iter().map(|sample| sample.elapsed).collect(),
            bytes_per_event,
        )
        .with_device_flushes(&flushes)
    }))
}

/// Writes back everything dirty on the file system holding `root`, outside
/// any clock.
pub(crate) fn settle(root: &Path) -> Result<(), BenchError> {
    #[cfg(target_os = "linux")]
    {
        let directory = std::fs::File::open(root).map_err(io_error("open the bench directory"))?;
        rustix::fs::syncfs(&directory).map_err(|error| BenchError::Io {
            operation: "syncfs the bench file system",
            source: error.into(),
        })?;
    }
    #[cfg(not(target_os = "linux"))]
    let _ = root;
    Ok(())
}

/// The median of `values` (the mean of the middle two for an even count).
pub(crate) fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => 0.0,
        len if len % 2 == 1 => sorted[len / 2],
        len => f64::midpoint(sorted[len / 2 - 1], sorted[len / 2]),
    }
}

/// The disk space the files under `path` take: their allocated blocks (what
/// `du` counts). The store extends sled's log to the end of its segment
/// without writing it, so the log's length runs ahead of what it holds by up
/// to a segment, in space nobody allocated.
pub(crate) fn directory_size(path: &Path) -> Result<u64, BenchError> {
    let mut total = 0;
    for entry in std::fs::read_dir(path).map_err(io_error("list a database directory"))? {
        let entry = entry.map_err(io_error("list a database directory"))?;
        let metadata = entry.metadata().map_err(io_error("stat a database file"))?;
        total += if metadata.is_dir() {
            directory_size(&entry.path())?
        } else {
            allocated_bytes(&metadata)
        };
    }
    Ok(total)
}

#[cfg(unix)]
fn allocated_bytes(metadata: &std::fs::Metadata) -> u64 {
    // st_blocks counts 512-byte units, whatever the file system's block size.
    std::os::unix::fs::MetadataExt::blocks(metadata) * 512
}

#[cfg(not(unix))]
fn allocated_bytes(metadata: &std::fs::Metadata) -> u64 {
    metadata.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[expect(
        clippy::float_cmp,
        reason = "the values are exact (small integers or copied through unchanged), so exact comparison is the check"
    )]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(median(&[]), 0.0);
    }

    #[test]
    fn device_flushes_per_event_are_the_median_over_repetitions_when_all_counted() {
        let measured = Measurement::new(4, vec![Duration::from_millis(1); 3], 1.0);
        let counted = measured.clone().with_device_flushes(&[Some(4), Some(8), Some(6)]);
        assert_eq!(counted.device_flushes_per_event, Some(1.5));
        let partly = measured.with_device_flushes(&[Some(4), None, Some(6)]);
        assert_eq!(partly.device_flushes_per_event, None);
        assert_eq!(flushes_between(Some(10), Some(13)), Some(3));
        assert_eq!(flushes_between(None, Some(13)), None);
    }

    #[test]
    fn interleaved_runs_every_workload_each_round() {
        let root = std::env::temp_dir();
        let mut order = Vec::new();
        let log = std::cell::RefCell::new(&mut order);
        let sample = |bytes| Sample::new(Duration::from_millis(1), bytes);
        let [first, second] = interleaved(
            &root,
            2,
            [
                (
                    5,
                    Box::new(|| {
                        log.borrow_mut().push('a');
                        Ok(sample(1.0))
                    }),
                ),
                (
                    7,
                    Box::new(|| {
                        log.borrow_mut().push('b');
                        Ok(sample(2.0))
                    }),
                ),
            ],
        )
        .unwrap();
        assert_eq!(order, ['a', 'b', 'a', 'b']);
        assert_eq!((first.events, first.samples.len(), first.bytes_per_event), (5, 2, 1.0));
        assert_eq!((second.events, second.bytes_per_event), (7, 2.0));
    }
}
