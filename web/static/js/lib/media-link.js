// The page's media link to its own daemon: camera and microphone go up on one audio and one
// video transceiver, the other person's come back on the same two. No trickle ICE: the offer
// goes once gathering is complete.
import { api } from "./api.js";

const video = { width: 640, height: 480 };

/** Camera and microphone, else the microphone alone. Rejects with a DOMException. */
export async function getLocalMedia() {
  const devices = navigator.mediaDevices;
  if (!devices?.getUserMedia) throw new DOMException("", "NotSupportedError");
  try {
    return await devices.getUserMedia({ audio: true, video });
  } catch (error) {
    if (error.name !== "NotFoundError" && error.name !== "OverconstrainedError") throw error;
    return devices.getUserMedia({ audio: true });
  }
}

const ERRORS = { NotAllowedError: "denied", SecurityError: "denied", NotFoundError: "notFound",
  OverconstrainedError: "notFound", NotReadableError: "inUse", AbortError: "inUse", NotSupportedError: "unsupported" };
/** The key under session.call.errors that explains a getUserMedia failure. */
export const mediaError = (error) => ERRORS[error?.name] ?? "media";

export class MediaLink {
  /** `onFailed()` runs if the link breaks while open. */
  constructor(callId, onFailed) {
    this.callId = callId;
    this.closed = false;
    this.pc = new RTCPeerConnection({ iceServers: [] });
    this.pc.onconnectionstatechange = () => this.pc.connectionState === "failed" && !this.closed && onFailed();
    /** The other person's audio and video, as the daemon sends them. */
    this.remote = new MediaStream();
  }

  async open(stream) {
    const { pc } = this;
    for (const kind of ["audio", "video"]) {
      const track = stream.getTracks().find((candidate) => candidate.kind === kind);
      this.remote.addTrack(pc.addTransceiver(track ?? kind, { direction: "sendrecv", streams: [stream] }).receiver.track);
    }
    await pc.setLocalDescription(await pc.createOffer());
    await new Promise((resolve) => {
      // Chromium may never say "complete" when no interface is usable: 3 s at most.
      const done = () => pc.iceGatheringState === "complete" && resolve();
      pc.onicegatheringstatechange = done;
      setTimeout(resolve, 3000);
      done();
    });
    if (this.closed) return;
    const { sdp, type } = await api("POST", "/api/media/offer", { sdp: pc.localDescription.sdp, type: "offer" });
    if (!this.closed) await pc.setRemoteDescription({ sdp, type });
  }

  /** Close; `tell` the daemon (not when the session is gone). */
  close(tell) {
    if (this.closed) return;
    this.closed = true;
    this.pc.close();
    for (const track of this.remote.getTracks()) track.stop();
    if (tell) api("POST", "/api/media/close", {}).catch(() => {});
  }
}
