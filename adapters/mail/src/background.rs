use std::fmt;
use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use portcullis_domain::{Mail, MailError, Mailer};
use tokio::sync::{Semaphore, mpsc};

/// Takes mails off the request path: [`send`](Mailer::send) puts the mail
/// in a bounded queue and returns `Ok(())` at once; a worker task drains
/// the queue and delivers through the inner mailer, a few deliveries at a
/// time. A failed delivery is logged (WARN); when the queue is full the
/// mail is dropped with a WARN. Neither line shows the recipient's token.
///
/// Wrap the [`SmtpMailer`](crate::SmtpMailer) in it: the caller never waits
/// for the SMTP server (whose own timeouts bound each delivery), so a slow
/// or dead server neither holds a request nor makes `POST
/// /auth/forgot-password` or `/auth/request-verify-token` slower for a
/// known address than for an unknown one. The price: send errors never
/// reach the caller, and mails still queued when the process ends are lost.
///
/// The worker starts on the Tokio runtime current when the mailer is made
/// (or, made outside any, at the first send), and lives as long as that
/// runtime, or until the last clone of the mailer is dropped.
///
/// ```
/// use std::sync::Arc;
/// use portcullis_domain::{EmailAddress, Mailer};
/// use portcullis_mail::{BackgroundMailer, LogMailer, verify_mail};
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let mailer = BackgroundMailer::new(Arc::new(LogMailer::new()));
/// let to = EmailAddress::parse("ann@example.com").unwrap();
/// // Queued, not delivered: returns at once whatever the mail server does.
/// mailer.send(verify_mail(&to, "https://app.example.com", "t")).await.unwrap();
/// # });
/// ```
#[derive(Clone)]
pub struct BackgroundMailer {
    inner: Arc<dyn Mailer>,
    capacity: usize,
    concurrency: usize,
    queue: Arc<OnceLock<mpsc::Sender<Mail>>>,
}

impl BackgroundMailer {
    /// How many mails may wait for delivery by default.
    pub const DEFAULT_CAPACITY: usize = 1000;
    /// How many deliveries run at once by default.
    pub const DEFAULT_CONCURRENCY: usize = 4;

    /// Delivers through `inner`, with a queue of
    /// [`Self::DEFAULT_CAPACITY`] mails and [`Self::DEFAULT_CONCURRENCY`]
    /// deliveries at a time.
    pub fn new(inner: Arc<dyn Mailer>) -> Self {
        Self::with_limits(inner, Self::DEFAULT_CAPACITY, Self::DEFAULT_CONCURRENCY)
    }

    /// Delivers through `inner`, with a queue of `capacity` mails (at least
    /// one) and `concurrency` deliveries at a time (at least one).
    pub fn with_limits(inner: Arc<dyn Mailer>, capacity: usize, concurrency: usize) -> Self {
        let this = Self {
            inner,
            capacity: capacity.max(1),
            concurrency: concurrency.max(1),
            queue: Arc::new(OnceLock::new()),
        };
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            this.queue(&runtime);
        }
        this
    }

    /// The queue, its worker started on `runtime` if not yet running.
    fn queue(&self, runtime: &tokio::runtime::Handle) -> &mpsc::Sender<Mail> {
        self.queue.get_or_init(|| {
            let (sender, receiver) = mpsc::channel(self.capacity);
            runtime.spawn(deliver(
                receiver,
                Arc::clone(&self.inner),
                Arc::new(Semaphore::new(self.concurrency)),
            ));
            sender
        })
    }
}

/// The worker: takes mails from the queue as delivery slots free up, until
/// every sender is gone.
async fn deliver(mut queue: mpsc::Receiver<Mail>, inner: Arc<dyn Mailer>, slots: Arc<Semaphore>) {
    while let Some(mail) = queue.recv().await {
        let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
            // The semaphore is never closed.
            return;
        };
        let inner = Arc::clone(&inner);
        tokio::spawn(async move {
            let subject = mail.subject.clone();
            if let Err(error) = inner.send(mail).await {
                tracing::warn!(%subject, %error, "mail delivery failed");
            }
            drop(slot);
        });
    }
}

impl fmt::Debug for BackgroundMailer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BackgroundMailer")
            .field("capacity", &self.capacity)
            .field("concurrency", &self.concurrency)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl Mailer for BackgroundMailer {
    async fn send(&self, mail: Mail) -> Result<(), MailError> {
        let queue = match self.queue.get() {
            Some(queue) => queue,
            None => match tokio::runtime::Handle::try_current() {
                Ok(runtime) => self.queue(&runtime),
                Err(_) => {
                    // No runtime to run a worker on: deliver in place.
                    return self.inner.send(mail).await;
                }
            },
        };
        match queue.try_send(mail) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(mail)) => {
                tracing::warn!(
                    subject = %mail.subject,
                    capacity = self.capacity,
                    "mail queue full: mail dropped"
                );
            }
            Err(mpsc::error::TrySendError::Closed(mail)) => {
                tracing::warn!(
                    subject = %mail.subject,
                    "mail queue closed (its runtime ended): mail dropped"
                );
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use portcullis_domain::EmailAddress;
    use tokio::sync::Notify;

    use super::*;

    /// A mail server that takes each mail and then never answers, until
    /// the test lets it go: says so on `started`, then waits on `release`.
    #[derive(Default)]
    struct Stalled {
        started: Notify,
        release: Notify,
        taken: Mutex<Vec<String>>,
    }

    #[async_trait]
    impl Mailer for Stalled {
        async fn send(&self, mail: Mail) -> Result<(), MailError> {
            self.taken.lock().unwrap().push(mail.subject);
            self.started.notify_one();
            self.release.notified().await;
            Ok(())
        }
    }

    fn a_mail() -> Mail {
        let to = EmailAddress::parse("ann@example.com").unwrap();
        crate::verify_mail(&to, "http://f", "t")
    }

    #[tokio::test(start_paused = true)]
    async fn send_returns_without_waiting_for_a_stalled_server() {
        // The clock is paused and only moves when every task waits on a
        // timer: a send that waited for the delivery (even with a bound)
        // would advance it, or never return.
        let stalled = Arc::new(Stalled::default());
        let mailer = BackgroundMailer::new(stalled.clone());
        let before = tokio::time::Instant::now();
        mailer.send(a_mail()).await.unwrap();
        assert_eq!(tokio::time::Instant::now(), before, "send waited");
        // The delivery was really started, and is still held.
        stalled.started.notified().await;
        assert_eq!(stalled.taken.lock().unwrap().len(), 1);
        stalled.release.notify_one();
    }

    #[tokio::test]
    async fn a_full_queue_drops_the_mail_and_still_answers() {
        // One delivery at a time, one mail waiting: "one" is held by the
        // server, "two" waits, "three" finds the queue full.
        let stalled = Arc::new(Stalled::default());
        let mailer = BackgroundMailer::with_limits(stalled.clone(), 1, 1);
        let mail = |subject: &str| Mail {
            subject: subject.to_owned(),
            ..a_mail()
        };
        mailer.send(mail("one")).await.unwrap();
        stalled.started.notified().await;
        mailer.send(mail("two")).await.unwrap();
        mailer.send(mail("three")).await.unwrap();
        stalled.release.notify_one();
        stalled.started.notified().await;
        stalled.release.notify_one();
        // Room again: "four" goes through, after "two"; "three" never did.
        mailer.send(mail("four")).await.unwrap();
        stalled.started.notified().await;
        assert_eq!(*stalled.taken.lock().unwrap(), ["one", "two", "four"]);
        stalled.release.notify_one();
    }

    #[test]
    fn made_outside_a_runtime_it_starts_its_worker_at_the_first_send() {
        let stalled = Arc::new(Stalled::default());
        let mailer = BackgroundMailer::new(stalled.clone());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            mailer.send(a_mail()).await.unwrap();
            stalled.started.notified().await;
            stalled.release.notify_one();
        });
    }
}
