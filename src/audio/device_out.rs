//! The device output: the default sound card through cpal.
//!
//! The ring already holds samples at the device rate and channel count (the decode thread
//! resamples), so the callback only copies and converts: no allocation, no lock.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow};
use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
use cpal::{FromSample, SampleFormat, SizedSample, StreamConfig};

use super::control::PlaybackControl;
use super::shared::{DecodeState, OutputState};

/// Time to let the device play out its own buffer after the ring drained.
const TAIL: Duration = Duration::from_millis(150);
/// With no progress at all for this long (and not paused), the device is considered dead.
const STALL: Duration = Duration::from_secs(3);

fn no_card(why: impl std::fmt::Display) -> anyhow::Error {
    anyhow!("no usable sound card ({why}); use --output null")
}

/// The default output device and the configuration it prefers.
pub(crate) struct DeviceTarget {
    device: cpal::Device,
    config: StreamConfig,
    format: SampleFormat,
}

impl DeviceTarget {
    /// Finds the default output device; fails with a message naming `--output null`.
    pub(crate) fn open() -> Result<Self> {
        // alsa-lib prints its own lines ("cannot find card '0'") on stderr before our clear
        // error; catch them on this thread and show them only with -v.
        let alsa_says = alsa::Output::local_error_handler().ok();
        let found = Self::find();
        if let Some(o) = alsa_says {
            let text = o.borrow().to_string();
            if !text.trim().is_empty() {
                tracing::debug!("alsa: {}", text.trim());
            }
        }
        found
    }

    fn find() -> Result<Self> {
        let host = cpal::default_host();
        let device = host
            .default_output_device()
            .ok_or_else(|| no_card("no output device"))?;
        let supported = device.default_output_config().map_err(no_card)?;
        let format = supported.sample_format();
        let config = supported.config();
        if config.channels == 0 || config.sample_rate == 0 {
            return Err(no_card("device reports no channels or no sample rate"));
        }
        Ok(DeviceTarget {
            device,
            config,
            format,
        })
    }

    pub(crate) fn rate(&self) -> u32 {
        self.config.sample_rate
    }

    pub(crate) fn channels(&self) -> u16 {
        self.config.channels
    }

    /// Plays the ring until it is drained after the decoder finished, the control is
    /// stopped, or the device fails.
    pub(crate) fn run(
        self,
        tap: super::ring_tap::RingTap,
        dec: Arc<DecodeState>,
        out: Arc<OutputState>,
        control: PlaybackControl,
        start: Instant,
    ) -> Result<()> {
        let cb = Callback {
            tap,
            dec: dec.clone(),
            out: out.clone(),
            control: control.clone(),
            start,
            channels: usize::from(self.channels()),
            starved: false,
            frames: 0,
            gain: super::gain::Gain::new(&control, self.rate()),
        };
        let stream = match self.format {
            SampleFormat::F32 => self.build::<f32>(cb, out.clone()),
            SampleFormat::F64 => self.build::<f64>(cb, out.clone()),
            SampleFormat::I16 => self.build::<i16>(cb, out.clone()),
            SampleFormat::I32 => self.build::<i32>(cb, out.clone()),
            SampleFormat::U16 => self.build::<u16>(cb, out.clone()),
            SampleFormat::I8 => self.build::<i8>(cb, out.clone()),
            SampleFormat::U8 => self.build::<u8>(cb, out.clone()),
            other => return Err(no_card(format!("unsupported sample format {other}"))),
        }?;
        stream.play().map_err(no_card)?;

        let mut last_frames = 0u64;
        let mut last_progress = Instant::now();
        loop {
            std::thread::sleep(Duration::from_millis(10));
            if control.is_stopped() || out.failure().is_some() {
                break;
            }
            if out.drained.load(Ordering::Relaxed) {
                std::thread::sleep(TAIL);
                break;
            }
            let frames = out.frames.load(Ordering::Relaxed);
            if frames != last_frames || control.is_paused() {
                last_frames = frames;
                last_progress = Instant::now();
            } else if last_progress.elapsed() > STALL {
                out.fail("audio device stopped pulling samples".to_string());
                break;
            }
        }
        drop(stream);
        Ok(())
    }

    fn build<T>(&self, mut cb: Callback, out: Arc<OutputState>) -> Result<cpal::Stream>
    where
        T: SizedSample + FromSample<f32>,
    {
        let rate = self.rate();
        let channels = self.channels();
        let on_error = move |e: cpal::Error| match e.kind() {
            cpal::ErrorKind::Xrun => {
                out.underruns.fetch_add(1, Ordering::Relaxed);
            }
            cpal::ErrorKind::DeviceChanged | cpal::ErrorKind::RealtimeDenied => {
                tracing::debug!("audio device: {e}");
            }
            _ => out.fail(format!("audio device failed: {e}")),
        };
        self.device
            .build_output_stream(
                self.config,
                move |data: &mut [T], _: &cpal::OutputCallbackInfo| cb.fill(data, rate),
                on_error,
                None,
            )
            .map_err(|e| {
                no_card(format!(
                    "cannot open a {rate} Hz {channels}-channel stream: {e}"
                ))
            })
    }
}

/// State owned by the real-time callback.
struct Callback {
    tap: super::ring_tap::RingTap,
    dec: Arc<DecodeState>,
    out: Arc<OutputState>,
    control: PlaybackControl,
    start: Instant,
    channels: usize,
    starved: bool,
    frames: u64,
    gain: super::gain::Gain,
}

impl Callback {
    /// Fills one device buffer. Allocation-free and lock-free.
    fn fill<T: SizedSample + FromSample<f32>>(&mut self, data: &mut [T], rate: u32) {
        if self.control.is_paused() || self.control.is_stopped() {
            data.fill(T::EQUILIBRIUM);
            return;
        }
        // Read `done` before the fill level: once done is seen, every sample is visible.
        let done = self.dec.is_done();
        let ch = self.channels.max(1);
        let target = super::gain::amplitude(self.control.volume());
        let mut filled = 0;
        // A read stops at a track boundary: the rest of the buffer comes from the next track.
        loop {
            let available = self.tap.prepare(&self.dec, &self.out, &self.control);
            let n = available.min(data.len() - filled) / ch * ch;
            if n == 0 {
                break;
            }
            let Ok(chunk) = self.tap.consumer.read_chunk(n) else {
                break;
            };
            let (a, b) = chunk.as_slices();
            let mut src = a.iter().chain(b);
            for frame in data[filled..filled + n].chunks_mut(ch) {
                let g = self.gain.next(target);
                for dst in frame {
                    *dst = T::from_sample(src.next().copied().unwrap_or(0.0) * g);
                }
            }
            chunk.commit_all();
            self.tap.consumed(n);
            self.out.mark_first_sample(self.start);
            self.frames += (n / ch) as u64;
            self.out.frames.store(self.frames, Ordering::Relaxed);
            filled += n;
        }
        data[filled..].fill(T::EQUILIBRIUM);
        if filled < data.len() {
            if done {
                if self.tap.consumer.slots() == 0 {
                    self.out.drained.store(true, Ordering::Relaxed);
                }
            } else {
                let missing = ((data.len() - filled) / ch) as u64;
                let us = missing * 1_000_000 / u64::from(rate.max(1));
                if self.tap.starved(&self.dec, us) {
                    if !self.starved {
                        self.starved = true;
                        self.out.underruns.fetch_add(1, Ordering::Relaxed);
                    }
                    self.out.underrun_us.fetch_add(us, Ordering::Relaxed);
                }
            }
        } else {
            self.starved = false;
        }
        self.out.frames.store(self.frames, Ordering::Relaxed);
        let cap = self.tap.capacity();
        self.control
            .set_progress(self.frames, self.tap.consumer.slots() as f32 / cap as f32);
    }
}
