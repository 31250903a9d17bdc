// The only two ways decoding may fail. Everything in src/wire throws one of these on bad input and
// nothing else (a RangeError escaping a decoder is a bug), so callers can tell "close the
// connection" from "answer BAD_REQUEST and carry on".

export type FramingErrorCode = 'FRAME_TOO_LARGE' | 'FRAME_TOO_SHORT';

/**
 * Frame boundaries are lost: the length prefix is impossible. Nothing after this point of the
 * stream can be trusted, so the connection must be closed.
 */
export class FramingError extends Error {
  override readonly name = 'FramingError';
  constructor(
    readonly code: FramingErrorCode,
    /** The length prefix that was read. */
    readonly length: number,
    readonly maxFrameBytes: number,
  ) {
    super(
      code === 'FRAME_TOO_LARGE'
        ? `frame length ${length} exceeds the limit of ${maxFrameBytes}`
        : `frame length ${length} is shorter than the type and request id`,
    );
  }
}

/**
 * A frame arrived intact but its body does not parse (unknown type, bad length field, trailing
 * bytes, out-of-range value). Framing is still in sync: a server answers ERROR BAD_REQUEST with the
 * frame's request id; on a replica link it is a protocol violation and the link is dropped.
 */
export class BadRequestError extends Error {
  override readonly name = 'BadRequestError';
  constructor(
    message: string,
    /** What a server answers: TOO_LARGE when the body announces more than a limit allows. */
    readonly code: 'BAD_REQUEST' | 'TOO_LARGE' = 'BAD_REQUEST',
  ) {
    super(message);
  }
}

/** True for the errors a decoder is allowed to throw on hostile input. */
export function isWireError(e: unknown): e is FramingError | BadRequestError {
  return e instanceof FramingError || e instanceof BadRequestError;
}
