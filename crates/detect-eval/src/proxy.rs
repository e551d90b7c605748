//! `detect proxy`: a user-space TCP proxy that makes a local endpoint look remote (an emulated
//! link: bandwidth and added round-trip delay). Each direction is a link of its own: a chunk
//! read at time t leaves after the chunks before it have been serialized at the link rate
//! (len·8 / rate) and arrives `delay/2` later. Bounded: it stops accepting after
//! `max_connections` and exits after `timeout`. A schedule changes the link during the run
//! (`--schedule "0s:100mbit:10ms,10s:5mbit:80ms"`): phase times count from the first byte the
//! proxy forwards, and each chunk takes the phase current when it is read.
//!
//! Figures measured through it are *emulated*; say so wherever they are shown.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, Instant};

#[derive(Clone, Debug)]
pub struct ProxyConfig {
    pub listen: SocketAddr,
    pub target: SocketAddr,
    /// Link rate in Mbit/s (each direction); 0 = unlimited.
    pub bandwidth_mbit: f64,
    /// Added round-trip time in ms (half per direction).
    pub delay_ms: f64,
    pub max_connections: usize,
    /// Later link phases (see [`parse_schedule`]); before the first, `bandwidth_mbit` and
    /// `delay_ms`.
    pub schedule: Vec<Phase>,
    /// The proxy exits after this long, connections included.
    pub timeout: Duration,
}

const CHUNK: usize = 16 * 1024;

/// From `at` (since the first forwarded byte) on, the link runs at `mbit` with `delay_ms`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Phase {
    pub at: Duration,
    pub mbit: f64,
    pub delay_ms: f64,
}

/// `"0s:100mbit:10ms,10s:5mbit:80ms"` → phases, in time order (times may be fractional
/// seconds; `0mbit` = unlimited).
pub fn parse_schedule(s: &str) -> Result<Vec<Phase>, String> {
    let mut out: Vec<Phase> = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let f: Vec<&str> = part.split(':').collect();
        let num = |v: &str, unit: &str| -> Result<f64, String> {
            v.strip_suffix(unit)
                .and_then(|n| n.parse::<f64>().ok())
                .filter(|n| n.is_finite() && *n >= 0.0)
                .ok_or_else(|| format!("schedule phase {part:?}: expected TIMEs:RATEmbit:DELAYms"))
        };
        if f.len() != 3 {
            return Err(format!(
                "schedule phase {part:?}: expected TIMEs:RATEmbit:DELAYms"
            ));
        }
        let phase = Phase {
            at: Duration::from_secs_f64(num(f[0], "s")?),
            mbit: num(f[1], "mbit")?,
            delay_ms: num(f[2], "ms")?,
        };
        if out.last().is_some_and(|l| l.at >= phase.at) {
            return Err(format!("schedule: times must increase ({part:?})"));
        }
        out.push(phase);
    }
    if out.is_empty() {
        return Err("empty schedule".into());
    }
    Ok(out)
}

/// (Mbit/s, round-trip delay ms) at `elapsed`: the last phase started, else the default.
pub fn link_at(schedule: &[Phase], default: (f64, f64), elapsed: Duration) -> (f64, f64) {
    schedule
        .iter()
        .rev()
        .find(|p| p.at <= elapsed)
        .map_or(default, |p| (p.mbit, p.delay_ms))
}

/// The shape of the link, shared by both directions of every connection.
struct Link<'a> {
    schedule: &'a [Phase],
    default: (f64, f64),
    /// Set when the first byte is read.
    origin: &'a std::sync::OnceLock<Instant>,
}

impl Link<'_> {
    /// (Mbit/s, one-way delay) for a chunk read at `at`.
    fn now(&self, at: Instant) -> (f64, Duration) {
        let origin = *self.origin.get_or_init(|| at);
        let (mbit, delay) = link_at(
            self.schedule,
            self.default,
            at.saturating_duration_since(origin),
        );
        (mbit, Duration::from_secs_f64(delay.max(0.0) / 2000.0))
    }
}

/// Time to serialize `bytes` at `mbit` Mbit/s.
pub fn serialization(bytes: usize, mbit: f64) -> Duration {
    if mbit <= 0.0 {
        Duration::ZERO
    } else {
        Duration::from_secs_f64(bytes as f64 * 8.0 / (mbit * 1e6))
    }
}

fn pipe(mut from: TcpStream, mut to: TcpStream, link: &Link, deadline: Instant) {
    let (tx, rx) = mpsc::channel::<(Instant, Vec<u8>)>();
    let _ = from.set_read_timeout(Some(Duration::from_millis(200)));
    let reader = std::thread::spawn(move || {
        let mut buf = vec![0u8; CHUNK];
        while Instant::now() < deadline {
            match from.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    if tx.send((Instant::now(), buf[..n].to_vec())).is_err() {
                        break;
                    }
                }
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.kind() == std::io::ErrorKind::TimedOut => {}
                Err(_) => break,
            }
        }
    });
    let mut link_free = Instant::now();
    while let Ok((arrived, data)) = rx.recv() {
        let (mbit, one_way) = link.now(arrived);
        link_free = link_free.max(arrived) + serialization(data.len(), mbit);
        let deliver = link_free + one_way;
        if deliver > deadline {
            break;
        }
        let now = Instant::now();
        if deliver > now {
            std::thread::sleep(deliver - now);
        }
        if to.write_all(&data).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
    let _ = reader.join();
}

/// Run until `timeout` (or `max_connections` accepted and finished).
pub fn run(cfg: &ProxyConfig) -> std::io::Result<usize> {
    let listener = TcpListener::bind(cfg.listen)?;
    listener.set_nonblocking(true)?;
    let deadline = Instant::now() + cfg.timeout;
    let origin = std::sync::OnceLock::new();
    let link = Link {
        schedule: &cfg.schedule,
        default: (cfg.bandwidth_mbit, cfg.delay_ms),
        origin: &origin,
    };
    let link = &link;
    let mut accepted = 0;
    std::thread::scope(|scope| {
        while Instant::now() < deadline && accepted < cfg.max_connections {
            match listener.accept() {
                Ok((client, _)) => {
                    accepted += 1;
                    let _ = client.set_nonblocking(false);
                    let Ok(server) =
                        TcpStream::connect_timeout(&cfg.target, Duration::from_secs(5))
                    else {
                        continue;
                    };
                    let _ = client.set_nodelay(true);
                    let _ = server.set_nodelay(true);
                    let (Ok(c2), Ok(s2)) = (client.try_clone(), server.try_clone()) else {
                        continue;
                    };
                    scope.spawn(move || pipe(client, server, link, deadline));
                    scope.spawn(move || pipe(s2, c2, link, deadline));
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(_) => std::thread::sleep(Duration::from_millis(10)),
            }
        }
    });
    Ok(accepted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serialization_time() {
        // 125 000 bytes = 1 Mbit: 100 ms at 10 Mbit/s.
        assert_eq!(serialization(125_000, 10.0), Duration::from_millis(100));
        assert_eq!(serialization(125_000, 0.0), Duration::ZERO);
    }

    #[test]
    fn schedule_parse_and_lookup() {
        let s = parse_schedule("0s:100mbit:10ms, 2.5s:5mbit:80ms").unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s[1].at, Duration::from_millis(2500));
        assert_eq!(
            link_at(&s, (1.0, 1.0), Duration::from_secs(1)),
            (100.0, 10.0)
        );
        assert_eq!(link_at(&s, (1.0, 1.0), Duration::from_secs(3)), (5.0, 80.0));
        let late = parse_schedule("1s:5mbit:80ms").unwrap();
        assert_eq!(link_at(&late, (50.0, 2.0), Duration::ZERO), (50.0, 2.0));
        assert!(parse_schedule("2s:5mbit:80ms,1s:1mbit:1ms").is_err());
        assert!(parse_schedule("2s:5mb:80ms").is_err());
        assert!(parse_schedule("").is_err());
    }

    #[test]
    fn shaped_echo() {
        // An echo server behind the proxy at 8 Mbit/s + 40 ms: 100 kB up and back.
        let echo = TcpListener::bind("127.0.0.1:0").unwrap();
        let target = echo.local_addr().unwrap();
        std::thread::spawn(move || {
            let (mut s, _) = echo.accept().unwrap();
            let mut buf = vec![0u8; 100_000];
            s.read_exact(&mut buf).unwrap();
            s.write_all(&buf).unwrap();
        });
        let probe = TcpListener::bind("127.0.0.1:0").unwrap();
        let listen = probe.local_addr().unwrap();
        drop(probe);
        let cfg = ProxyConfig {
            listen,
            target,
            bandwidth_mbit: 8.0,
            delay_ms: 40.0,
            max_connections: 1,
            schedule: vec![],
            timeout: Duration::from_secs(10),
        };
        let proxy = std::thread::spawn(move || run(&cfg).unwrap());
        let mut c = None;
        for _ in 0..100 {
            if let Ok(s) = TcpStream::connect(listen) {
                c = Some(s);
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let mut c = c.expect("proxy listening");
        let t = Instant::now();
        c.write_all(&vec![7u8; 100_000]).unwrap();
        let mut back = vec![0u8; 100_000];
        c.read_exact(&mut back).unwrap();
        let ms = t.elapsed().as_secs_f64() * 1000.0;
        // 2 × 100 ms serialization + 40 ms delay = 240 ms; allow scheduling slack.
        assert!((230.0..600.0).contains(&ms), "{ms} ms");
        assert!(back.iter().all(|&b| b == 7));
        drop(c);
        assert_eq!(proxy.join().unwrap(), 1);
    }
}
