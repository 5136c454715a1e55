// Microphone capture (through mic-worklet.js) and gapless playback of the reply's WAVs.

const workletLoaded = new WeakSet(); // per AudioContext: a processor name registers once

/** Opens the microphone and calls onFrame(ArrayBuffer of 1280 bytes, level 0..1) per frame. */
export class Mic {
  constructor(ctx, onFrame) {
    this.ctx = ctx;
    this.onFrame = onFrame;
    this.stream = null;
    this.node = null;
    this.source = null;
  }

  async start() {
    if (!navigator.mediaDevices?.getUserMedia) {
      // Browsers hide getUserMedia on plain http from anything but localhost.
      throw Object.assign(new Error("insecure"), { name: "InsecureContext" });
    }
    // The same processing the LocalChatVRM client asks for; echo cancellation keeps the
    // assistant's own voice from counting as the user barging in.
    this.stream = await navigator.mediaDevices.getUserMedia({
      audio: { channelCount: 1, echoCancellation: true, noiseSuppression: true, autoGainControl: true },
    });
    if (!workletLoaded.has(this.ctx)) {
      await this.ctx.audioWorklet.addModule(new URL("mic-worklet.js", import.meta.url));
      workletLoaded.add(this.ctx);
    }
    this.source = this.ctx.createMediaStreamSource(this.stream);
    this.node = new AudioWorkletNode(this.ctx, "pcm16k", { numberOfOutputs: 1 });
    this.node.port.onmessage = (e) => this.onFrame(e.data.pcm, e.data.level);
    this.source.connect(this.node);
    // Its output is silence; connecting it keeps the node pulled by the graph in every browser.
    this.node.connect(this.ctx.destination);
  }

  stop() {
    this.node?.port.postMessage("stop");
    this.source?.disconnect();
    this.node?.disconnect();
    for (const track of this.stream?.getTracks() ?? []) track.stop();
    this.stream = this.node = this.source = null;
  }
}

/**
 * Queues WAV files back to back on the AudioContext's clock, so sentences sent at once
 * (streamAudio) play without gaps or overlap; stop() silences everything at once.
 */
export class Player {
  constructor(ctx, onChange) {
    this.ctx = ctx;
    this.onChange = onChange; // called with the number of buffers playing or queued
    this.sources = new Set();
    this.endsAt = 0;
    this.generation = 0;
    this.decoding = Promise.resolve();
    this.scheduled = 0; // totals, exposed for tests and curious users
    this.played = 0;
  }

  get active() {
    return this.sources.size > 0;
  }

  enqueue(wavBytes) {
    const generation = this.generation;
    // Decoding is asynchronous and may finish out of order: chain it to keep sentence order.
    this.decoding = this.decoding
      .then(() => this.ctx.decodeAudioData(wavBytes.buffer))
      .then((buffer) => {
        if (generation === this.generation) this.schedule(buffer);
      })
      .catch((err) => console.error("could not decode reply audio", err));
  }

  schedule(buffer) {
    const source = this.ctx.createBufferSource();
    source.buffer = buffer;
    source.connect(this.ctx.destination);
    // A little lead so the first chunk does not start clipped while the graph wakes up.
    const at = Math.max(this.ctx.currentTime + 0.05, this.endsAt);
    source.start(at);
    this.endsAt = at + buffer.duration;
    this.sources.add(source);
    this.scheduled++;
    source.onended = () => {
      if (this.sources.delete(source)) this.played++;
      this.onChange(this.sources.size);
    };
    this.onChange(this.sources.size);
  }

  stop() {
    this.generation++; // drops WAVs still being decoded
    for (const source of this.sources) {
      source.onended = null;
      source.stop();
    }
    this.sources.clear();
    this.endsAt = 0;
    this.onChange(0);
  }
}
