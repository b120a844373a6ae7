/** Luhn-valid test card numbers (ISO/IEC 7812): `prefix` + `n` zero-padded to 18 digits + check digit. */
export function testCard(n: number, prefix = '621700'): string {
  const body = prefix + String(n).padStart(18 - prefix.length, '0');
  let sum = 0;
  for (let i = 0; i < body.length; i++) {
    let d = body.charCodeAt(body.length - 1 - i) - 48;
    if (i % 2 === 0) { d *= 2; if (d > 9) d -= 9; }
    sum += d;
  }
  return body + String((10 - (sum % 10)) % 10);
}
