/** The value of one hex digit's character code ('0'-'9', 'a'-'f', 'A'-'F'; callers pass validated UUIDs). */
export function hexValue(c: number): number {
  return c <= 0x39 ? c - 0x30 : (c | 0x20) - 0x57;
}
