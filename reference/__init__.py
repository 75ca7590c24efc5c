"""Per-assignment knowledge: reference solutions, their wrong variants, probe inputs, and
(under standins/) the small helper modules that sandboxed student code may import."""
