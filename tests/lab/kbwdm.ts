// The lab fixture driver's interface (tests/fixture/kbwdm.c), for the
// Windows-side scripts the lab tests run under Wine.
import { ctlCode } from "../../mod.ts";

const SAMPLE_TYPE = 40000;

export const KBWDM = {
  DEVICE_PATH: "\\\\.\\KbWdm",
  SERVICE: "kbwdm",
  HELLO: ctlCode({ deviceType: SAMPLE_TYPE, function: 0x900, method: "BUFFERED", access: "ANY" }),
  REVERSE: ctlCode({ deviceType: SAMPLE_TYPE, function: 0x901, method: "NEITHER", access: "ANY" }),
  FILL: ctlCode({ deviceType: SAMPLE_TYPE, function: 0x902, method: "OUT_DIRECT", access: "ANY" }),
  LOG: ctlCode({ deviceType: SAMPLE_TYPE, function: 0x903, method: "BUFFERED", access: "ANY" }),
  /** Only in the stub-importing variant (kbwdmstub.sys): pends through IoCsqInsertIrp, a Wine stub. */
  QUEUE: ctlCode({ deviceType: SAMPLE_TYPE, function: 0x904, method: "BUFFERED", access: "ANY" }),
  /** "KBSM" */
  MAGIC: 0x4d53424b,
  /** LOG's flags byte that takes the planted crash. */
  LOG_VERBOSE: 0xff,
} as const;
