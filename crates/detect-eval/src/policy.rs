//! Where to run each image (`detect send --policy local|remote|auto`): the pure decision logic,
//! no I/O. `auto` keeps running estimates from what it has measured and predicts, per image,
//!
//! - local time = `a_l + b_l · bytes` (exponentially weighted fit of the local times),
//! - remote time = RTT + bytes / uplink + remote compute + response tail, where RTT (the fit's
//!   intercept) and 1 / uplink (its slope) come from an exponentially weighted fit of the
//!   measured `upload_ms` (time to the response headers − server time) against bytes, remote
//!   compute from a fit of the server-reported total against bytes, and the tail (reading the
//!   response after its headers) from an EWMA,
//!
//! and runs the image where the prediction is smaller. Once a side has two samples, a
//! measurement more than twice or less than half the prediction restarts that side's estimates from it (a changed link or device:
//! one probe is enough to notice, instead of the EWMA's slow drift). So that a link which recovers (or a
//! device that gets busy) is noticed, it probes the option not chosen when that option has not
//! run for `explore_every` images (on the next image no bigger than the running mean size, so
//! a probe over a bad link is cheap); while probes confirm the choice the interval doubles (up to
//! `max_explore_every`), and it returns to `explore_every` when the choice flips. A probe that
//! is predicted to cost much more than the preferred option also waits until its extra time is
//! at most [`PROBE_BUDGET`] of the time spent since the last one, which bounds what exploring
//! costs when the two options are far apart (a bad link next to a fast device).

/// Where an image ran.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Place {
    Local,
    Remote,
}

impl Place {
    pub fn name(self) -> &'static str {
        match self {
            Place::Local => "local",
            Place::Remote => "remote",
        }
    }

    fn other(self) -> Place {
        match self {
            Place::Local => Place::Remote,
            Place::Remote => Place::Local,
        }
    }
}

/// Exponentially weighted moving average: `v ← (1 − α)·v + α·x`; the first sample sets `v`.
#[derive(Clone, Debug)]
pub struct Ewma {
    alpha: f64,
    value: Option<f64>,
}

impl Ewma {
    pub fn new(alpha: f64) -> Self {
        Ewma { alpha, value: None }
    }

    pub fn update(&mut self, x: f64) -> f64 {
        let v = match self.value {
            None => x,
            Some(v) => (1.0 - self.alpha) * v + self.alpha * x,
        };
        self.value = Some(v);
        v
    }

    pub fn get(&self) -> Option<f64> {
        self.value
    }
}

/// Exponentially weighted least squares of y on x (every moment is an [`Ewma`]), for
/// "time = intercept + slope · bytes".
#[derive(Clone, Debug)]
pub struct EwLine {
    /// Without spread in the sizes: y ∝ x (true) or y constant (false).
    proportional: bool,
    samples: usize,
    x: Ewma,
    y: Ewma,
    xx: Ewma,
    xy: Ewma,
}

impl EwLine {
    pub fn new(alpha: f64, proportional: bool) -> Self {
        EwLine {
            proportional,
            samples: 0,
            x: Ewma::new(alpha),
            y: Ewma::new(alpha),
            xx: Ewma::new(alpha),
            xy: Ewma::new(alpha),
        }
    }

    pub fn update(&mut self, x: f64, y: f64) {
        self.samples += 1;
        self.x.update(x);
        self.y.update(y);
        self.xx.update(x * x);
        self.xy.update(x * y);
    }

    /// (intercept, slope). Without spread in x, or when the fit says bigger is faster or the
    /// intercept is negative (noise): through the origin and the means if proportional, else
    /// the mean.
    pub fn fit(&self) -> Option<(f64, f64)> {
        let (mx, my) = (self.x.get()?, self.y.get()?);
        let var = self.xx.get()? - mx * mx;
        let cov = self.xy.get()? - mx * my;
        if var > 1e-9 * mx * mx {
            let slope = cov / var;
            let intercept = my - slope * mx;
            if slope >= 0.0 && intercept >= 0.0 {
                return Some((intercept, slope));
            }
        }
        if self.proportional && mx > 0.0 {
            Some((0.0, my / mx))
        } else {
            Some((my, 0.0))
        }
    }

    pub fn samples(&self) -> usize {
        self.samples
    }

    pub fn predict(&self, x: f64) -> Option<f64> {
        self.fit().map(|(a, b)| a + b * x)
    }
}

/// What `auto` has learnt.
#[derive(Clone, Debug)]
pub struct Estimates {
    /// Local time per image (ms) against bytes.
    pub local: EwLine,
    /// `upload_ms` against bytes: intercept = round trip + handling, slope = ms per byte.
    pub upload: EwLine,
    /// Server-reported total (ms) against bytes.
    pub compute: EwLine,
    /// Client round trip − upload − server time: reading the response.
    pub tail: Ewma,
}

impl Estimates {
    pub fn new(alpha: f64) -> Self {
        Estimates {
            local: EwLine::new(alpha, false),
            // Without spread in the sizes seen, the upload is taken as constant: optimistic for
            // larger images, so one of them goes remote and the slope gets measured (taken as
            // proportional, only small images would ever go remote and it never would).
            upload: EwLine::new(alpha, false),
            compute: EwLine::new(alpha, false),
            tail: Ewma::new(alpha),
        }
    }

    pub fn predict_local(&self, bytes: f64) -> Option<f64> {
        self.local.predict(bytes)
    }

    pub fn predict_remote(&self, bytes: f64) -> Option<f64> {
        Some(
            self.upload.predict(bytes)?
                + self.compute.predict(bytes)?
                + self.tail.get().unwrap_or(0.0),
        )
    }

    /// Uplink in Mbit/s as the fit sees it (None without a positive slope).
    pub fn uplink_mbit(&self) -> Option<f64> {
        let (_, slope) = self.upload.fit()?;
        (slope > 0.0).then(|| 8.0 / (slope * 1e3))
    }
}

/// A measurement off the prediction by more than a factor of 2 either way.
fn changed(predicted: Option<f64>, measured: f64) -> bool {
    predicted.is_some_and(|p| p > 0.0 && (measured > 2.0 * p || measured < 0.5 * p))
}

/// A decision and why.
#[derive(Clone, Debug, PartialEq)]
pub struct Decision {
    pub place: Place,
    pub reason: String,
}

/// The share of the run's time a probe's predicted extra cost may take (see the module notes).
pub const PROBE_BUDGET: f64 = 0.1;

/// The `auto` policy's state.
#[derive(Clone, Debug)]
pub struct Auto {
    pub est: Estimates,
    alpha: f64,
    explore_every: usize,
    max_explore_every: usize,
    interval: usize,
    /// Images decided since each place last ran (index by `Place as usize`).
    since: [usize; 2],
    preferred: Option<Place>,
    remote_failed: bool,
    /// Running mean image size: probes wait for an image no bigger.
    mean_bytes: Ewma,
}

impl Auto {
    pub fn new(alpha: f64, explore_every: usize, max_explore_every: usize) -> Self {
        let explore_every = explore_every.max(1);
        Auto {
            est: Estimates::new(alpha),
            alpha,
            explore_every,
            max_explore_every: max_explore_every.max(explore_every),
            interval: explore_every,
            since: [0, 0],
            preferred: None,
            remote_failed: false,
            mean_bytes: Ewma::new(alpha),
        }
    }

    /// Where to run an image of `bytes` bytes. Call once per image, then report what happened
    /// with [`Auto::observe_local`] / [`Auto::observe_remote`] / [`Auto::remote_failed`].
    pub fn decide(&mut self, bytes: u64) -> Decision {
        let b = bytes as f64;
        let mean_bytes = self.mean_bytes.update(b);
        let decision = match (self.est.predict_local(b), self.est.predict_remote(b)) {
            (None, _) => Decision {
                place: Place::Local,
                reason: "no local estimate yet".into(),
            },
            (Some(_), None) if !self.remote_failed => Decision {
                place: Place::Remote,
                reason: "no remote estimate yet".into(),
            },
            (Some(l), r) => {
                let predicted = |p: Place| match p {
                    Place::Local => Some(l),
                    Place::Remote => r,
                };
                let (preferred, why) = match r {
                    _ if self.remote_failed => (Place::Local, "remote failed last time".into()),
                    Some(r) if r < l => (
                        Place::Remote,
                        format!("predicted remote {r:.0} ms < local {l:.0} ms"),
                    ),
                    Some(r) => (
                        Place::Local,
                        format!("predicted local {l:.0} ms <= remote {r:.0} ms"),
                    ),
                    None => (Place::Local, "no remote estimate".into()),
                };
                if self.preferred != Some(preferred) {
                    self.preferred = Some(preferred);
                    self.interval = self.explore_every;
                }
                let other = preferred.other();
                // Images the preferred option must run first so that the probe's extra time is
                // at most PROBE_BUDGET of theirs.
                let budget_wait = match (predicted(preferred), predicted(other)) {
                    (Some(p), Some(o)) if p > 0.0 && o > p => {
                        ((o - p) / (PROBE_BUDGET * p)).ceil().min(1e6) as usize
                    }
                    _ => 0,
                };
                if self.since[other as usize] >= self.interval.max(budget_wait) && b <= mean_bytes {
                    let waited = self.since[other as usize];
                    self.interval = (self.interval * 2).min(self.max_explore_every);
                    Decision {
                        place: other,
                        reason: format!(
                            "probe {} ({waited} images since it ran; {why})",
                            other.name()
                        ),
                    }
                } else {
                    Decision {
                        place: preferred,
                        reason: why,
                    }
                }
            }
        };
        let p = decision.place;
        self.since[p as usize] = 0;
        self.since[p.other() as usize] += 1;
        decision
    }

    pub fn observe_local(&mut self, bytes: u64, ms: f64) {
        if self.est.local.samples() >= 2 && changed(self.est.predict_local(bytes as f64), ms) {
            self.est.local = EwLine::new(self.alpha, false);
        }
        self.est.local.update(bytes as f64, ms);
    }

    /// A successful remote image: its `upload_ms`, the server's total and the client's round
    /// trip (see [`super::rows::Row`]).
    pub fn observe_remote(&mut self, bytes: u64, upload_ms: f64, server_ms: f64, rtt_ms: f64) {
        self.remote_failed = false;
        if self.est.upload.samples() >= 2 && changed(self.est.predict_remote(bytes as f64), rtt_ms)
        {
            self.est.upload = EwLine::new(self.alpha, false);
            self.est.compute = EwLine::new(self.alpha, false);
            self.est.tail = Ewma::new(self.alpha);
        }
        self.est.upload.update(bytes as f64, upload_ms);
        self.est.compute.update(bytes as f64, server_ms);
        self.est
            .tail
            .update((rtt_ms - upload_ms - server_ms).max(0.0));
    }

    /// The remote did not answer (or answered with an error): run locally until a probe succeeds.
    pub fn remote_failed(&mut self) {
        self.remote_failed = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn ewma_by_hand() {
        let mut e = Ewma::new(0.5);
        assert_eq!(e.get(), None);
        assert_eq!(e.update(10.0), 10.0);
        assert_eq!(e.update(20.0), 15.0);
        assert_eq!(e.update(5.0), 10.0);
    }

    #[test]
    fn line_fit_recovers_rtt_and_bandwidth() {
        // 10 Mbit/s = 1.25 bytes/µs = 0.0008 ms/byte; 60 ms round trip.
        let mut l = EwLine::new(0.5, true);
        for bytes in [20_000.0, 100_000.0, 300_000.0, 50_000.0] {
            l.update(bytes, 60.0 + 0.0008 * bytes);
        }
        let (a, b) = l.fit().unwrap();
        assert!(
            (a - 60.0).abs() < 1e-6 && (b - 0.0008).abs() < 1e-12,
            "{a} {b}"
        );
        // One sample: the line through the origin.
        let mut one = EwLine::new(0.5, true);
        one.update(100_000.0, 50.0);
        assert_eq!(one.fit(), Some((0.0, 0.0005)));
        let mut flat = EwLine::new(0.5, false);
        flat.update(100_000.0, 50.0);
        assert_eq!(flat.fit(), Some((50.0, 0.0)));
    }

    #[test]
    fn prediction_is_rtt_plus_transfer_plus_compute() {
        let mut e = Estimates::new(0.5);
        // Upload of 100 kB at 80 Mbit/s (10 ms) + 10 ms round trip; 200 kB: 20 + 10 ms.
        e.upload.update(100_000.0, 20.0);
        e.upload.update(200_000.0, 30.0);
        e.compute.update(100_000.0, 25.0);
        e.tail.update(1.0);
        // 150 kB: 10 + 15 + 25 + 1 = 51 ms.
        assert!(close(e.predict_remote(150_000.0).unwrap(), 51.0));
        assert!((e.uplink_mbit().unwrap() - 80.0).abs() < 1e-9);
    }

    fn auto_with(local_ms: f64, rtt_ms: f64, mbit: f64, compute_ms: f64) -> Auto {
        let mut a = Auto::new(0.5, 10, 40);
        for bytes in [50_000u64, 150_000] {
            a.observe_local(bytes, local_ms);
            let up = rtt_ms + bytes as f64 * 8.0 / (mbit * 1e3);
            a.observe_remote(bytes, up, compute_ms, up + compute_ms);
        }
        a
    }

    #[test]
    fn fast_link_goes_remote_when_remote_computes_faster() {
        // Local (a slow device) 90 ms; 100 Mbit/s + 10 ms, remote computes in 25 ms:
        // 100 kB → 10 + 8 + 25 = 43 ms.
        let mut a = auto_with(90.0, 10.0, 100.0, 25.0);
        let d = a.decide(100_000);
        assert_eq!(d.place, Place::Remote);
        assert_eq!(d.reason, "predicted remote 43 ms < local 90 ms");
    }

    #[test]
    fn slow_link_stays_local() {
        // 5 Mbit/s + 80 ms: 100 kB → 80 + 160 + 25 = 265 ms > 90 ms.
        let mut a = auto_with(90.0, 80.0, 5.0, 25.0);
        let d = a.decide(100_000);
        assert_eq!(d.place, Place::Local);
        assert_eq!(d.reason, "predicted local 90 ms <= remote 265 ms");
    }

    #[test]
    fn one_small_remote_sample_does_not_make_large_images_look_slow() {
        let mut a = Auto::new(0.5, 10, 40);
        assert_eq!(a.decide(100_000).place, Place::Local);
        a.observe_local(100_000, 60.0);
        assert_eq!(a.decide(30_000).place, Place::Remote);
        a.observe_remote(30_000, 25.0, 12.0, 38.0);
        // 250 kB: local 60 ms; remote 25 + 12 + 1 ms (no slope measured yet, so none assumed).
        let d = a.decide(250_000);
        assert_eq!(d.place, Place::Remote, "{}", d.reason);
        assert_eq!(d.reason, "predicted remote 38 ms < local 60 ms");
        // Over a 2 Mbit/s link it takes 918 ms, far off the prediction: the remote estimate
        // restarts from it and the next large image stays local.
        a.observe_remote(250_000, 25.0 + 220_000.0 * 8.0 / 2e3, 12.0, 918.0);
        let slow = a.decide(250_000);
        assert_eq!(slow.place, Place::Local, "{}", slow.reason);
    }

    #[test]
    fn cold_start_tries_each_once() {
        let mut a = Auto::new(0.5, 10, 40);
        assert_eq!(a.decide(1000).place, Place::Local);
        a.observe_local(1000, 30.0);
        assert_eq!(a.decide(1000).place, Place::Remote);
    }

    #[test]
    fn exploration_cadence_backs_off_and_resets() {
        let mut a = auto_with(90.0, 80.0, 5.0, 25.0);
        let mut probes = Vec::new();
        for i in 0..80 {
            let d = a.decide(100_000);
            if d.place == Place::Remote {
                assert!(d.reason.starts_with("probe remote"), "{}", d.reason);
                probes.push(i);
                // The probe confirms the slow link.
                a.observe_remote(100_000, 240.0, 25.0, 265.0);
            } else {
                a.observe_local(100_000, 90.0);
            }
        }
        // A probe costs 265 - 90 = 175 ms more than local: it waits for 175 / (0.1 * 90) → 20
        // local images (more than the interval of 10), then 20, then 40.
        assert_eq!(probes, vec![20, 41]);

        // The link recovers: one probe at 100 Mbit/s + 10 ms is enough to flip (α = 0.5).
        let mut a = auto_with(90.0, 80.0, 5.0, 25.0);
        let mut first_remote = None;
        for i in 0..22 {
            let d = a.decide(100_000);
            match d.place {
                Place::Remote => {
                    first_remote.get_or_insert(i);
                    a.observe_remote(100_000, 18.0, 25.0, 43.0);
                }
                Place::Local => a.observe_local(100_000, 90.0),
            }
        }
        assert_eq!(first_remote, Some(20));
        let d = a.decide(100_000);
        assert_eq!(d.place, Place::Remote, "{}", d.reason);
        assert!(d.reason.starts_with("predicted remote"), "{}", d.reason);
    }

    #[test]
    fn cheap_probes_follow_the_interval_and_costly_ones_the_budget() {
        // Remote 43 ms preferred, local 50 ms: a local probe costs 7 ms extra, within 10 % of
        // 10 remote images (43 ms each), so the interval (10) decides.
        let mut a = auto_with(50.0, 10.0, 100.0, 25.0);
        let first_local = (0..30).find(|_| {
            let d = a.decide(100_000);
            match d.place {
                Place::Local => {
                    a.observe_local(100_000, 50.0);
                    true
                }
                Place::Remote => {
                    a.observe_remote(100_000, 18.0, 25.0, 43.0);
                    false
                }
            }
        });
        assert_eq!(first_local, Some(10));
        // Local 20 ms preferred, remote 265 ms: a probe costs 245 ms extra, so it waits for
        // 245 / (0.1 * 20) → 123 local images, whatever the interval says.
        let mut a = auto_with(20.0, 80.0, 5.0, 25.0);
        let first_remote = (0..200).find(|_| {
            let d = a.decide(100_000);
            match d.place {
                Place::Remote => true,
                Place::Local => {
                    a.observe_local(100_000, 20.0);
                    false
                }
            }
        });
        assert_eq!(first_remote, Some(123));
    }

    #[test]
    fn a_due_probe_waits_for_a_small_image() {
        let mut a = auto_with(90.0, 80.0, 5.0, 25.0);
        for _ in 0..20 {
            assert_eq!(a.decide(100_000).place, Place::Local);
            a.observe_local(100_000, 90.0);
        }
        // Due, but 300 kB is above the running mean (100 k → 200 k): wait.
        assert_eq!(a.decide(300_000).place, Place::Local);
        a.observe_local(300_000, 90.0);
        // 50 kB is below it: probe.
        let d = a.decide(50_000);
        assert_eq!(d.place, Place::Remote);
        assert!(
            d.reason.starts_with("probe remote (21 images"),
            "{}",
            d.reason
        );
    }

    #[test]
    fn failure_falls_back_to_local_until_a_probe() {
        let mut a = auto_with(90.0, 10.0, 100.0, 25.0);
        a.remote_failed();
        let d = a.decide(100_000);
        assert_eq!(
            (d.place, d.reason.as_str()),
            (Place::Local, "remote failed last time")
        );
    }
}
