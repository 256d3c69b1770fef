// SET_ROWS's rule for a destination row index (set_rows.comp, set_rows_q.comp, and the kernels that write cache
// rows for a fused SET_ROWS: rope.comp's CACHE variants, matvec_rope.glsl): `lo` its low word and, for I64 indices,
// `hi` its high word. An I64 index names a row only with a zero high word (non-negative, below 2^32), an I32 one
// only when non-negative; either must be below `rows`. An index outside writes nothing.
bool row_index_in_range(bool idx64, uint lo, uint hi, uint rows) {
    return (idx64 ? hi == 0u : int(lo) >= 0) && lo < rows;
}
