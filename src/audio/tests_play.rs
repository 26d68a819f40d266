//! Streaming playback tests: readers that behave like the network (small reads, stalls,
//! throttling, failures) against the null, wav and device outputs.

use std::io::Read;
use std::time::{Duration, Instant};

use super::tests::{FIXTURES, ext, fixture};
use super::*;

/// Serves bytes in small reads, like chunks arriving from the network.
struct NetReader {
    data: Vec<u8>,
    pos: usize,
    chunk: usize,
    /// After this many bytes, deliver at `bytes_per_s`.
    throttle: Option<(usize, f64)>,
    throttle_start: Option<(Instant, usize)>,
    /// After this many bytes, block for this long once.
    stall: Option<(usize, Duration)>,
    /// After this many bytes, fail for good.
    fail_at: Option<usize>,
}

impl NetReader {
    fn new(data: Vec<u8>) -> Self {
        NetReader {
            data,
            pos: 0,
            chunk: 4096,
            throttle: None,
            throttle_start: None,
            stall: None,
            fail_at: None,
        }
    }
}

impl Read for NetReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let mut limit = self.data.len();
        if let Some(at) = self.fail_at {
            if self.pos >= at {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::ConnectionReset,
                    "peer went away",
                ));
            }
            limit = limit.min(at);
        }
        if let Some((at, how_long)) = self.stall {
            if self.pos >= at {
                std::thread::sleep(how_long);
                self.stall = None;
            } else {
                limit = limit.min(at);
            }
        }
        if let Some((at, rate)) = self.throttle
            && self.pos >= at
        {
            let (t0, p0) = *self
                .throttle_start
                .get_or_insert((Instant::now(), self.pos));
            loop {
                let allowed = p0 + (t0.elapsed().as_secs_f64() * rate) as usize;
                if allowed > self.pos {
                    limit = limit.min(allowed);
                    break;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        let n = buf
            .len()
            .min(self.chunk)
            .min(limit.saturating_sub(self.pos));
        buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Reads a WAV output, 16-bit PCM or float, as f32.
pub(super) fn read_wav(path: &std::path::Path) -> (u32, u16, Vec<f32>) {
    let mut r = hound::WavReader::open(path).unwrap();
    let spec = r.spec();
    let samples = match spec.sample_format {
        hound::SampleFormat::Int => r
            .samples::<i16>()
            .map(|s| f32::from(s.unwrap()) / 32768.0)
            .collect(),
        hound::SampleFormat::Float => r.samples::<f32>().map(|s| s.unwrap()).collect(),
    };
    (spec.sample_rate, spec.channels, samples)
}

/// 16-bit plain PCM (format tag 1, which Python's `wave` and every tool read) for 16-bit
/// and narrower sources (the flac and wav fixtures), 32-bit float for lossy ones.
fn assert_wav_format(path: &std::path::Path, fixture_name: &str) {
    let spec = hound::WavReader::open(path).unwrap().spec();
    let header = std::fs::read(path).unwrap();
    if fixture_name.ends_with(".flac") || fixture_name.ends_with(".wav") {
        assert_eq!(
            spec.sample_format,
            hound::SampleFormat::Int,
            "{fixture_name}"
        );
        assert_eq!(spec.bits_per_sample, 16, "{fixture_name}");
        assert_eq!(&header[20..22], &[1, 0], "{fixture_name}: format tag");
    } else {
        assert_eq!(
            spec.sample_format,
            hound::SampleFormat::Float,
            "{fixture_name}"
        );
        assert_eq!(spec.bits_per_sample, 32, "{fixture_name}");
    }
}

#[test]
fn wav_output_matches_decode_all() {
    let dir = tempfile::tempdir().unwrap();
    for (name, _, _) in FIXTURES {
        let data = fixture(name);
        let (rate, ch, expected) = decode_all(&data, ext(name)).unwrap();
        let path = dir.path().join(format!("{name}.wav"));
        let stats = play_from_reader(
            NetReader::new(data),
            ext(name),
            OutputKind::Wav(path.clone()),
            Instant::now(),
            PlaybackControl::default(),
        )
        .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(stats.ended_early, None, "{name}");
        assert_eq!(stats.skipped_packets, 0, "{name}");
        assert_eq!((stats.sample_rate, stats.channels), (rate, ch), "{name}");
        assert_eq!(
            stats.frames as usize * usize::from(ch),
            expected.len(),
            "{name}"
        );
        assert_wav_format(&path, name);
        let (wrate, wch, got) = read_wav(&path);
        assert_eq!((wrate, wch), (rate, ch), "{name}");
        assert_eq!(got.len(), expected.len(), "{name}");
        let worst = got
            .iter()
            .zip(&expected)
            .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
        assert!(worst < 1e-6, "{name}: max difference {worst}");
    }
}

#[test]
fn null_output_plays_in_real_time() {
    let t0 = Instant::now();
    let stats = play_from_reader(
        NetReader::new(fixture("tone.ogg")),
        Some("ogg"),
        OutputKind::Null,
        t0,
        PlaybackControl::default(),
    )
    .unwrap();
    let took = t0.elapsed().as_secs_f64();
    eprintln!("null: {stats:?} in {took:.3} s");
    // Never faster than real time; slower only by time the stats account for (start-up and
    // underruns), plus the ring's last ~0.1 s and scheduling slack on a busy machine.
    let played = stats.frames as f64 / 44_100.0;
    assert!(took >= played * 0.98, "{played} s played in {took} s");
    let accounted = played + stats.ttfa_ms / 1000.0 + stats.underrun_ms / 1000.0;
    assert!(
        took < accounted + 0.5,
        "took {took} s, {accounted} s accounted for"
    );
    assert_eq!(stats.underruns, 0, "{stats:?}");
    assert_eq!(stats.underrun_ms, 0.0);
    assert!(
        stats.ttfa_ms > 0.0 && stats.ttfa_ms < 300.0,
        "ttfa {}",
        stats.ttfa_ms
    );
    assert!((stats.frames as i64 - 88_200).abs() < 1_000, "{stats:?}");
    assert_eq!((stats.sample_rate, stats.channels), (44_100, 2));
    assert_eq!(stats.ended_early, None);
}

#[test]
fn throttled_source_underruns() {
    let data = fixture("tone.mp3");
    let mut reader = NetReader::new(data.clone());
    // A quarter arrives at once, the rest at half the bitrate.
    let bytes_per_s = data.len() as f64 / 2.0 / 2.0;
    reader.throttle = Some((data.len() / 4, bytes_per_s));
    reader.chunk = 512;
    let control = PlaybackControl::default();
    let stats = play_from_reader(
        reader,
        Some("mp3"),
        OutputKind::Null,
        Instant::now(),
        control.clone(),
    )
    .unwrap();
    eprintln!("throttled: {stats:?}");
    assert!(stats.underruns > 0, "{stats:?}");
    assert!(stats.underrun_ms > 100.0, "{stats:?}");
    assert_eq!(stats.ended_early, None, "{stats:?}");
    assert!(
        (control.status().elapsed_s - 2.0).abs() < 0.1,
        "{:?}",
        control.status()
    );
}

#[test]
fn truncated_file_plays_what_it_has() {
    let mut data = fixture("tone.mp3");
    data.truncate(data.len() / 2);
    let t0 = Instant::now();
    let stats = play_from_reader(
        NetReader::new(data),
        Some("mp3"),
        OutputKind::Null,
        t0,
        PlaybackControl::default(),
    )
    .unwrap();
    eprintln!("truncated: {stats:?}");
    assert!(
        t0.elapsed() < Duration::from_secs(2),
        "took {:?}",
        t0.elapsed()
    );
    assert!((30_000..60_000).contains(&stats.frames), "{stats:?}");
    if let Some(why) = &stats.ended_early {
        assert!(why.starts_with("track truncated"), "{why}");
    }
}

#[test]
fn failing_source_ends_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    for (name, _, _) in FIXTURES {
        let data = fixture(name);
        let mut reader = NetReader::new(data.clone());
        // Past the first Ogg audio page (the ogg fixture has 1 s pages).
        reader.fail_at = Some(data.len() * 3 / 4);
        reader.chunk = 1024;
        let path = dir.path().join("out.wav");
        let stats = play_from_reader(
            reader,
            ext(name),
            OutputKind::Wav(path.clone()),
            Instant::now(),
            PlaybackControl::default(),
        )
        .unwrap_or_else(|e| panic!("{name}: {e}"));
        let why = stats.ended_early.clone().unwrap_or_default();
        assert!(
            why.starts_with("source failed: peer went away"),
            "{name}: {stats:?}"
        );
        assert!(
            stats.frames > 10_000 && stats.frames < 85_000,
            "{name}: {stats:?}"
        );
        let (_, _, got) = read_wav(&path);
        assert_eq!(got.len() as u64, stats.frames * u64::from(stats.channels));
    }
}

#[test]
fn unplayable_streams_are_errors() {
    let play_error = |reader: NetReader| {
        play_from_reader(
            reader,
            None,
            OutputKind::Null,
            Instant::now(),
            PlaybackControl::default(),
        )
        .unwrap_err()
        .to_string()
    };
    let mut reader = NetReader::new(fixture("tone.ogg"));
    reader.fail_at = Some(0);
    let err = play_error(reader);
    assert!(err.starts_with("source failed: peer went away"), "{err}");

    let err = play_error(NetReader::new(fixture("not-audio.txt")));
    assert!(err.starts_with("not a decodable audio file"), "{err}");

    // A peer's copy bypasses the push's probe: a header claiming ~4 GHz must not size the
    // ring (or a resampler) from it.
    let err = play_error(NetReader::new(super::tests::wav_claiming_rate(
        u32::MAX - 4,
    )));
    assert!(err.starts_with("not a decodable audio file"), "{err}");

    // Nor may a peer's copy make the player keep gigabytes of pictures.
    let err = play_error(NetReader::new(super::tests::flac_with_pictures(
        5,
        (16 << 20) - 1,
    )));
    assert!(
        err.contains("more than 64 MiB of tags and pictures"),
        "{err}"
    );

    let err = play_error(NetReader::new(Vec::new()));
    assert!(err.starts_with("not a decodable audio file"), "{err}");
}

#[test]
fn stop_returns_promptly_even_with_a_stalled_source() {
    let data = fixture("tone.ogg");
    let mut reader = NetReader::new(data.clone());
    // Past the first audio page (1 s of audio), so playback starts before the stall.
    reader.stall = Some((data.len() * 3 / 4, Duration::from_secs(5)));
    let control = PlaybackControl::default();
    let stopper = control.clone();
    // Conditions, not a schedule: pause once 0.3 s have played, check that nothing plays while
    // paused, then stop; only the time from stop to return is measured.
    let driver = std::thread::spawn(move || {
        while stopper.status().elapsed_s < 0.3 {
            std::thread::sleep(Duration::from_millis(2));
        }
        stopper.pause();
        std::thread::sleep(Duration::from_millis(50));
        let at_pause = stopper.status().elapsed_s;
        std::thread::sleep(Duration::from_millis(200));
        let after = stopper.status().elapsed_s;
        stopper.stop();
        (at_pause, after, Instant::now())
    });
    let stats = play_from_reader(
        reader,
        Some("ogg"),
        OutputKind::Null,
        Instant::now(),
        control.clone(),
    )
    .unwrap();
    let returned = Instant::now();
    let (at_pause, after, stopped) = driver.join().unwrap();
    assert_eq!(at_pause, after, "audio was consumed while paused");
    // The source stalls for 5 s: returning well before that is what "promptly" means.
    let lag = returned.duration_since(stopped);
    assert!(lag < Duration::from_secs(2), "stop took {lag:?}");
    let played = stats.frames as f64 / 44_100.0;
    assert!(
        (played - at_pause).abs() < 0.05,
        "{stats:?} vs {at_pause} s at pause"
    );
    // Paused: no underrun counted however long the pause.
    assert_eq!(stats.underruns, 0);
    assert_eq!(stats.ended_early, None);
}

#[test]
fn device_plays_or_names_null_output() {
    let mut data = fixture("tone.ogg");
    data.truncate(data.len() / 4);
    match play_from_reader(
        NetReader::new(data),
        Some("ogg"),
        OutputKind::Device,
        Instant::now(),
        PlaybackControl::default(),
    ) {
        Ok(stats) => assert!(stats.frames > 0, "{stats:?}"),
        Err(e) => {
            eprintln!("device: {e}");
            assert!(e.to_string().contains("--output null"), "{e}")
        }
    }
}

#[test]
fn device_path_resamples_and_maps_channels() {
    use super::feed;
    use super::shared::DecodeState;
    use std::sync::Arc;
    // The device path without a device: decode the mono flac for a 48 kHz stereo target.
    let dec = Arc::new(DecodeState::new());
    let track = super::OpenedTrack {
        reader: Box::new(super::ForwardOnly(NetReader::new(fixture("tone.flac")))),
        ext: Some("flac".into()),
        index: 0,
    };
    let source = Box::new(super::track_source::OneTrack(Some(track)));
    let (handle, ready) = feed::spawn(
        source,
        Some((48_000, 2)),
        dec.clone(),
        super::PlaybackControl::new(),
    )
    .unwrap();
    let (spec, mut consumer) = ready.recv().unwrap().unwrap();
    assert_eq!(
        (spec.rate, spec.channels, spec.out_rate, spec.out_channels),
        (44_100, 1, 48_000, 2)
    );
    let mut samples = Vec::new();
    loop {
        let done = dec.is_done();
        while let Ok(s) = consumer.pop() {
            samples.push(s);
        }
        if done {
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    drop(consumer);
    handle.join().unwrap();
    assert_eq!(samples.len(), 96_000 * 2);
    assert!(samples.chunks(2).all(|f| f[0] == f[1]));
}

#[test]
fn volume_scales_the_output_in_the_pipeline() {
    let dir = tempfile::tempdir().unwrap();
    let data = fixture("tone.ogg");
    let (_, _, full) = decode_all(&data, Some("ogg")).unwrap();
    let path = dir.path().join("half.wav");
    let control = PlaybackControl::default();
    control.set_volume(50);
    play_from_reader(
        NetReader::new(data),
        Some("ogg"),
        OutputKind::Wav(path.clone()),
        Instant::now(),
        control,
    )
    .unwrap();
    let (_, _, got) = read_wav(&path);
    assert_eq!(got.len(), full.len());
    // Volume 50 is a quarter of the amplitude, from the first sample (no ramp at the start).
    let worst = got
        .iter()
        .zip(&full)
        .fold(0f32, |m, (g, f)| m.max((g - 0.25 * f).abs()));
    assert!(worst < 1e-6, "worst deviation {worst}");
}
