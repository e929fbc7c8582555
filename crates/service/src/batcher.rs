//! Dynamic batching: requests put images on a bounded queue; one thread, which owns the
//! model, takes the first waiting image, gathers more until it holds `max_batch` or
//! `max_wait` has passed, and runs them through the network in one pass. Under load the
//! batches grow, and so does throughput; a full queue is refused at once (503), never
//! buffered without bound.

use crate::metrics::Metrics;
use hipfrac_core::{Prediction, Radiograph};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// An error of one image's prediction, as text (it crosses threads and ends in JSON).
pub type PredictError = Box<dyn std::error::Error + Send + Sync>;

/// Predicts a batch of radiographs, one result per image, in order (the model's one
/// prediction path, `Predictor::predict_batch`, in hipfrac).
pub type PredictFn = Box<dyn FnMut(&[Radiograph]) -> Vec<Result<Prediction, PredictError>> + Send>;

struct Job {
    image: Radiograph,
    reply: tokio::sync::oneshot::Sender<Result<Prediction, PredictError>>,
}

/// The sending side of the queue.
#[derive(Clone)]
pub struct Queue {
    sender: SyncSender<Job>,
    metrics: Arc<Metrics>,
    capacity: usize,
}

/// Why an image was not queued.
#[derive(Debug, PartialEq, Eq)]
pub enum QueueError {
    /// The queue holds as many images as it may.
    Full,
    /// The batching thread has stopped.
    Closed,
    /// More images at once than the queue can ever hold.
    TooMany { images: usize, capacity: usize },
}

/// The answer to one queued image.
pub type Answer = tokio::sync::oneshot::Receiver<Result<Prediction, PredictError>>;

/// The model panicked on a batch: every image of it gets this error, and the service goes on.
#[derive(Debug, thiserror::Error)]
#[error("the model failed on this batch (internal error)")]
pub struct BatchFailed;

impl Queue {
    /// Queues `image`; the answer arrives on the returned receiver.
    pub fn submit(&self, image: Radiograph) -> Result<Answer, QueueError> {
        Ok(self.submit_all(vec![image])?.remove(0))
    }

    /// Queues all of `images` or none of them: a request is never half queued.
    pub fn submit_all(&self, images: Vec<Radiograph>) -> Result<Vec<Answer>, QueueError> {
        let n = images.len();
        if n > self.capacity {
            return Err(QueueError::TooMany {
                images: n,
                capacity: self.capacity,
            });
        }
        // The depth counts every queued image until the batcher has taken it, so it is never
        // below the channel's own count: room here is room there.
        let before = self.metrics.queue_depth.fetch_add(n, Ordering::SeqCst);
        if before + n > self.capacity {
            self.metrics.queue_depth.fetch_sub(n, Ordering::SeqCst);
            return Err(QueueError::Full);
        }
        let mut answers = Vec::with_capacity(n);
        for image in images {
            let (reply, answer) = tokio::sync::oneshot::channel();
            match self.sender.try_send(Job { image, reply }) {
                Ok(()) => answers.push(answer),
                Err(e) => {
                    // Only a stopped batcher (or a race with it) gets here; what was sent is
                    // answered as abandoned.
                    self.metrics.queue_depth.fetch_sub(n - answers.len(), Ordering::SeqCst);
                    return Err(match e {
                        TrySendError::Full(_) => QueueError::Full,
                        TrySendError::Disconnected(_) => QueueError::Closed,
                    });
                }
            }
        }
        Ok(answers)
    }
}

/// How batches are formed.
#[derive(Debug, Clone, Copy)]
pub struct Batching {
    pub max_batch: usize,
    pub max_wait: Duration,
    /// Images the queue holds at most.
    pub capacity: usize,
}

/// A radiograph that runs the whole path once before the service says it is ready (a smooth
/// gradient: a constant image is refused by the display pipeline).
fn warm_up_image() -> Radiograph {
    let n = 256u32;
    let pixels = (0..n * n).map(|i| ((i % n + i / n) * 8) as u16).collect();
    Radiograph {
        meta: hipfrac_core::RadiographMeta::plain(n, n, 12),
        pixels: hipfrac_core::Pixels::Unsigned(pixels),
    }
}

/// Starts the batching thread with `predict`; `ready` is raised once a warm-up pass has run.
pub fn start(mut predict: PredictFn, batching: Batching, metrics: Arc<Metrics>, ready: Arc<AtomicBool>) -> Queue {
    let (sender, receiver) = sync_channel::<Job>(batching.capacity.max(1));
    let thread_metrics = metrics.clone();
    std::thread::Builder::new()
        .name("hipfrac-batcher".into())
        .spawn(move || {
            let warm = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| predict(&[warm_up_image()])));
            match warm {
                Ok(results) if results.iter().all(Result::is_ok) => ready.store(true, Ordering::SeqCst),
                _ => tracing::error!("the warm-up prediction failed; the service stays not ready"),
            }
            run(&mut predict, &receiver, batching, &thread_metrics);
        })
        .expect("the batching thread starts");
    Queue {
        sender,
        metrics,
        capacity: batching.capacity.max(1),
    }
}

/// Takes the next batch: waits for a first image, then takes the images already queued, and
/// waits up to `max_wait` for more only while other requests are on their way
/// ([`Metrics::arriving`]): a lone client never waits for company that is not coming.
fn next_batch(receiver: &Receiver<Job>, batching: Batching, metrics: &Metrics) -> Option<Vec<Job>> {
    let first = receiver.recv().ok()?;
    let mut jobs = vec![first];
    let deadline = Instant::now() + batching.max_wait;
    while jobs.len() < batching.max_batch.max(1) {
        if let Ok(job) = receiver.try_recv() {
            jobs.push(job);
            continue;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || metrics.arriving.load(Ordering::SeqCst) == 0 {
            break;
        }
        // Short waits, so that a request that stops arriving (a bad image) is noticed.
        match receiver.recv_timeout(left.min(Duration::from_millis(2))) {
            Ok(job) => jobs.push(job),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    Some(jobs)
}

fn run(predict: &mut PredictFn, receiver: &Receiver<Job>, batching: Batching, metrics: &Metrics) {
    while let Some(jobs) = next_batch(receiver, batching, metrics) {
        metrics.queue_depth.fetch_sub(jobs.len(), Ordering::SeqCst);
        // Requests that gave up (timed out, disconnected, failed elsewhere) cost nothing more.
        let jobs: Vec<Job> = jobs.into_iter().filter(|j| !j.reply.is_closed()).collect();
        if jobs.is_empty() {
            continue;
        }
        metrics.batch(jobs.len());
        let (images, replies): (Vec<Radiograph>, Vec<_>) = jobs.into_iter().map(|j| (j.image, j.reply)).unzip();
        // A panic in the model answers this batch with an error; the service goes on.
        let results = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| predict(&images)));
        match results {
            Ok(results) if results.len() == replies.len() => {
                for (reply, result) in replies.into_iter().zip(results) {
                    let _ = reply.send(result);
                }
            }
            _ => {
                for reply in replies {
                    let _ = reply.send(Err(Box::new(BatchFailed)));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hipfrac_core::{Answer, Label, OperatingPoint, Verdict};

    fn answer(image: &Radiograph) -> Prediction {
        let verdict = Verdict {
            label: Label::NoFracture,
            confidence: None,
            operating_point: OperatingPoint::NoFracture,
            vf_priority_applied: false,
        };
        Prediction {
            width: image.width(),
            height: image.height(),
            detections: Vec::new(),
            class_scores: [0.0; 4],
            answer: Answer::Verdict(verdict),
            side: None,
            hips: Vec::new(),
        }
    }

    /// Images queued while the model is busy are answered together in one larger batch.
    #[test]
    fn waiting_images_are_batched_and_a_full_queue_refuses() {
        let sizes = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (gate_tx, gate_rx) = std::sync::mpsc::channel::<()>();
        let seen = sizes.clone();
        let mut first = true;
        let predict: PredictFn = Box::new(move |images: &[Radiograph]| {
            seen.lock().unwrap().push(images.len());
            // After the warm-up, the first batch waits for the test's signal.
            if images.len() == 1 && images[0].width() == 256 {
            } else if first {
                first = false;
                gate_rx.recv().unwrap();
            }
            images.iter().map(|i| Ok(answer(i))).collect()
        });
        let metrics = Arc::new(Metrics::default());
        let ready = Arc::new(AtomicBool::new(false));
        let queue = start(
            predict,
            Batching {
                max_batch: 8,
                max_wait: Duration::from_millis(1),
                capacity: 4,
            },
            metrics.clone(),
            ready.clone(),
        );
        let image = || Radiograph {
            meta: hipfrac_core::RadiographMeta::plain(4, 4, 8),
            pixels: hipfrac_core::Pixels::Unsigned(vec![0; 16]),
        };
        let busy = queue.submit(image()).unwrap();
        // Wait until the batcher holds that image (the queue is empty again).
        let started = Instant::now();
        while metrics.queue_depth.load(Ordering::SeqCst) > 0 || sizes.lock().unwrap().len() < 2 {
            assert!(started.elapsed() < Duration::from_secs(10));
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(
            queue.submit_all((0..5).map(|_| image()).collect()).unwrap_err(),
            QueueError::TooMany { images: 5, capacity: 4 }
        );
        let mut waiting = queue.submit_all((0..3).map(|_| image()).collect()).unwrap();
        assert_eq!(
            queue.submit_all(vec![image(), image()]).unwrap_err(),
            QueueError::Full,
            "all or none"
        );
        waiting.push(queue.submit(image()).unwrap());
        assert_eq!(queue.submit(image()).unwrap_err(), QueueError::Full);
        gate_tx.send(()).unwrap();
        for answer in std::iter::once(busy).chain(waiting) {
            assert!(answer.blocking_recv().unwrap().is_ok());
        }
        assert!(ready.load(Ordering::SeqCst));
        assert_eq!(
            *sizes.lock().unwrap(),
            vec![1, 1, 4],
            "warm-up, the busy image, then the four that waited in one batch"
        );
    }
}
