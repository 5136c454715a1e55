// AudioWorklet: microphone samples at the context's rate -> 16 kHz mono int16 frames of
// 640 samples (1280 bytes), what /ws expects. Runs on the audio thread; posts each frame
// (transferred, not copied) with its RMS level for the page's meter.

const OUT_RATE = 16000;
const FRAME = 640;

// Windowed-sinc low-pass: decimating 48 kHz to 16 kHz without one would fold everything
// above 8 kHz back into the speech band, which Whisper hears as noise.
function lowpass(cutoff, taps) {
  const h = new Float32Array(taps);
  const mid = (taps - 1) / 2;
  let sum = 0;
  for (let n = 0; n < taps; n++) {
    const x = n - mid;
    const sinc = x === 0 ? 2 * cutoff : Math.sin(2 * Math.PI * cutoff * x) / (Math.PI * x);
    const hamming = 0.54 - 0.46 * Math.cos((2 * Math.PI * n) / (taps - 1));
    h[n] = sinc * hamming;
    sum += h[n];
  }
  for (let n = 0; n < taps; n++) h[n] /= sum;
  return h;
}

class Pcm16kProcessor extends AudioWorkletProcessor {
  constructor() {
    super();
    // `sampleRate` is the AudioContext's rate (a global of the worklet scope).
    this.step = sampleRate / OUT_RATE;
    this.taps = this.step > 1 ? lowpass(7000 / sampleRate, 2 * Math.ceil(this.step * 8) + 1) : null;
    this.ring = new Float32Array(this.taps ? this.taps.length : 1);
    this.ringPos = 0;
    this.prev = 0; // last filtered input sample
    this.pos = 1; // next output's position between prev (0) and the current sample (1)
    this.frame = new Int16Array(FRAME);
    this.filled = 0;
    this.energy = 0;
    this.running = true;
    this.port.onmessage = (e) => {
      if (e.data === "stop") this.running = false;
    };
  }

  filter(x) {
    if (!this.taps) return x;
    const { ring, taps } = this;
    ring[this.ringPos] = x;
    this.ringPos = (this.ringPos + 1) % ring.length;
    let acc = 0;
    let i = this.ringPos;
    for (let k = 0; k < taps.length; k++) {
      acc += taps[k] * ring[i];
      i = i + 1 === ring.length ? 0 : i + 1;
    }
    return acc;
  }

  emit(v) {
    const s = Math.max(-1, Math.min(1, v));
    this.frame[this.filled++] = s < 0 ? s * 0x8000 : s * 0x7fff;
    this.energy += s * s;
    if (this.filled === FRAME) {
      const level = Math.sqrt(this.energy / FRAME);
      this.port.postMessage({ pcm: this.frame.buffer, level }, [this.frame.buffer]);
      this.frame = new Int16Array(FRAME);
      this.filled = 0;
      this.energy = 0;
    }
  }

  process(inputs) {
    const channels = inputs[0];
    if (channels && channels.length) {
      const n = channels[0].length;
      for (let i = 0; i < n; i++) {
        // Down-mix: a stereo mic must not reach the server as one channel only.
        let x = 0;
        for (const ch of channels) x += ch[i];
        const y = this.filter(x / channels.length);
        // Linear interpolation between filtered samples at the output rate.
        while (this.pos <= 1) {
          this.emit(this.prev + (y - this.prev) * this.pos);
          this.pos += this.step;
        }
        this.pos -= 1;
        this.prev = y;
      }
    }
    return this.running;
  }
}

registerProcessor("pcm16k", Pcm16kProcessor);
