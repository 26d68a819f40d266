//! Volume in the pipeline (not the system mixer): each output multiplies what it takes from
//! the ring by a gain that glides to the control's volume over ~10 ms, so a change never
//! clicks, and takes effect within one output buffer instead of after the ~1 s ring.

use super::control::PlaybackControl;

/// How long a volume change takes, in seconds.
const RAMP_S: f32 = 0.010;

/// Amplitude for a volume of 0..=100: squared, so equal steps sound like equal steps.
pub(crate) fn amplitude(volume: u8) -> f32 {
    let v = f32::from(volume.min(100)) / 100.0;
    v * v
}

pub(crate) struct Gain {
    current: f32,
    step: f32,
}

impl Gain {
    /// Starts at the control's volume (no ramp from silence at the start of a track).
    pub(crate) fn new(control: &PlaybackControl, sample_rate: u32) -> Self {
        Gain {
            current: amplitude(control.volume()),
            step: 1.0 / (RAMP_S * sample_rate.max(1) as f32),
        }
    }

    /// Whether samples pass unchanged (full volume, no ramp under way): the lossless WAV path
    /// stays bit-exact.
    pub(crate) fn is_unity(&self, control: &PlaybackControl) -> bool {
        self.current == 1.0 && control.volume() >= 100
    }

    /// The gain for the next frame, one step closer to `target` (from [`amplitude`]).
    pub(crate) fn next(&mut self, target: f32) -> f32 {
        if self.current != target {
            let d = target - self.current;
            self.current += d.clamp(-self.step, self.step);
        }
        self.current
    }

    /// Applies the gain to interleaved frames in place, gliding toward the control's volume.
    pub(crate) fn apply(
        &mut self,
        control: &PlaybackControl,
        samples: &mut [f32],
        channels: usize,
    ) {
        let target = amplitude(control.volume());
        for frame in samples.chunks_mut(channels.max(1)) {
            let g = self.next(target);
            for s in frame {
                *s *= g;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glides_to_the_new_volume_without_a_jump() {
        let c = PlaybackControl::new();
        let mut g = Gain::new(&c, 44_100);
        assert!(g.is_unity(&c));
        c.set_volume(50);
        let mut buf = vec![1.0f32; 2 * 1000];
        g.apply(&c, &mut buf, 2);
        // 10 ms at 44.1 kHz: 441 frames of glide, then flat at 0.25.
        let left: Vec<f32> = buf.iter().step_by(2).copied().collect();
        assert!(
            left.windows(2)
                .all(|w| w[0] >= w[1] && w[0] - w[1] <= 1.0 / 441.0 + 1e-6)
        );
        assert!((left[460] - 0.25).abs() < 1e-6, "{}", left[460]);
        assert!((left[999] - 0.25).abs() < 1e-6);
        assert_eq!(amplitude(0), 0.0);
        assert_eq!(amplitude(150), 1.0);
    }
}
