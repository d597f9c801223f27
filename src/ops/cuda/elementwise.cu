// One template per elementwise family; the generator (elementwise.rs) substitutes the
// element types $TA (inputs) and $TO (output) and the op's C expression $EXPR of x (and y,
// or c, x, y for a select). rank == 0: every operand has the output's shape.

// $BEGIN unary
extern "C" __global__ void k(const $TA* a, $TO* out, long long n) {
    GRID_LOOP(i, n) {
        $TA x = a[i];
        out[i] = ($TO)($EXPR);
    }
}
// $END

// $BEGIN binary
extern "C" __global__ void k(const $TA* a, const $TA* b, $TO* out, long long n, int rank,
                             Dims8 dims, Dims8 sa, Dims8 sb) {
    GRID_LOOP(i, n) {
        $TA x = a[rank ? offset_of(i, rank, dims, sa) : i];
        $TA y = b[rank ? offset_of(i, rank, dims, sb) : i];
        out[i] = ($TO)($EXPR);
    }
}
// $END

// $BEGIN select
extern "C" __global__ void k(const bool* cond, const $TA* a, const $TA* b, $TO* out,
                             long long n, int rank, Dims8 dims, Dims8 sc, Dims8 sa, Dims8 sb) {
    GRID_LOOP(i, n) {
        bool c = cond[rank ? offset_of(i, rank, dims, sc) : i];
        $TA x = a[rank ? offset_of(i, rank, dims, sa) : i];
        $TA y = b[rank ? offset_of(i, rank, dims, sb) : i];
        out[i] = ($TO)($EXPR);
    }
}
// $END

// $BEGIN gather
// Tile and BroadcastTo: each output element reads the input element its index maps to.
extern "C" __global__ void k(const $TA* a, $TO* out, long long n, int rank, Dims8 dims,
                             Dims8 in_dims, Dims8 in_strides) {
    GRID_LOOP(i, n) {
        long long off = 0, r = i;
        for (int d = rank - 1; d >= 0; --d) {
            long long c = r % dims.v[d];
            r /= dims.v[d];
            off += (c % in_dims.v[d]) * in_strides.v[d];
        }
        $TA x = a[off];
        out[i] = ($TO)($EXPR);
    }
}
// $END

// $BEGIN fill
// Fill: every element is $EXPR of the scalar at `value` (a device scalar: no host round
// trip); ZerosLike and OnesLike pass no value.
extern "C" __global__ void k(const $TA* value, $TO* out, long long n) {
    $TA x = value ? value[0] : ($TA)0;
    GRID_LOOP(i, n) { out[i] = ($TO)($EXPR); }
}
// $END
