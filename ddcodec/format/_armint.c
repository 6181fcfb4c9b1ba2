/* The ARM's sequential integer loops (docs/FORMAT.md, "ARM (version 4)"), compiled ahead of time with the package.
 *
 * armint.py is the only caller: it checks the ARM's values (fixed_point), lays the grids out in a padded int64
 * coding buffer and hands this module NumPy buffers. Here: the probability tables, the prediction of each latent
 * value (its causal context, the fixed-point MLP), and the rANS coding of the residuals (Giesen's rans64: a 63-bit
 * state, 32-bit words, 24-bit probabilities). Everything is exact int64 arithmetic in one thread (the GIL is
 * released meanwhile), so the results are the same on every machine and thread count. The sizes of every buffer
 * are checked against one another before the loops run: a wrong call raises ValueError, never reads out of bounds.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LATENT 511
#define RESIDUALS (4 * MAX_LATENT + 1)
#define FRAC 4
#define LEVELS_PER_OCTAVE 4
#define MIN_LOG2_SCALE (-4)
#define LEVELS 49
#define MAX_WIDTH 32
#define MAX_LAYERS 4 /* up to 3 hidden layers and the output layer */
#define OUTPUTS 2
#define PRECISION 24
#define MAX_ACTIVATION ((int64_t)1 << 30)
#define RANS_LOW ((uint64_t)1 << 31)
#define PAD 3
#define TABLE_ROW (RESIDUALS + 1)

enum { OK = 0, OUT_OF_WORDS = 1, OUT_OF_RANGE = 2, BAD_STATE = 3 };

/* An arithmetic shift right (floor division by 2^k) on every compiler, whatever it does with negative >>. */
static inline int64_t floor_shift(int64_t v, int k) { return v >= 0 ? v >> k : -((-v - 1) >> k) - 1; }

static inline int64_t clamp(int64_t v, int64_t lo, int64_t hi) { return v < lo ? lo : v > hi ? hi : v; }

typedef struct {
    int layers;                /* linear layers, the output layer last */
    int64_t dims[MAX_LAYERS + 1]; /* inputs, then each layer's outputs */
    const int64_t *weights;    /* each layer's (outputs, inputs), row-major, one after the other, x 2^16 */
    const int64_t *biases;     /* each layer's outputs, x 2^32 */
    const int64_t *buffer;     /* the padded grids (armint._layout) */
    const int64_t *layout;     /* (grids, 3): height, width, offset */
    const int64_t *offsets;    /* (neighbours, 2): dy, dx */
    int neighbours, coarser, grids;
    const int64_t *cum;        /* (LEVELS, FRAC, RESIDUALS + 1) cumulative frequencies */
} Arm;

/* The ARM on inputs a (x 2^16; overwritten, b is scratch): the mean in quarters (clamped) and the level. */
static void mlp(const Arm *arm, int64_t *a, int64_t *b, int64_t *mean, int64_t *level) {
    const int64_t *w = arm->weights, *bias = arm->biases;
    for (int layer = 0; layer < arm->layers; layer++) {
        int64_t n_in = arm->dims[layer], n_out = arm->dims[layer + 1];
        int last = layer == arm->layers - 1;
        for (int64_t j = 0; j < n_out; j++) {
            int64_t acc = bias[j];
            for (int64_t i = 0; i < n_in; i++)
                acc += w[j * n_in + i] * a[i];
            acc = floor_shift(acc, 16);
            b[j] = last ? acc : clamp(acc, 0, MAX_ACTIVATION);
        }
        for (int64_t j = 0; j < n_out; j++)
            a[j] = b[j];
        w += n_in * n_out;
        bias += n_out;
    }
    *mean = clamp(floor_shift(a[0], 14), -MAX_LATENT * FRAC, MAX_LATENT * FRAC);
    *level = clamp(floor_shift((a[1] - MIN_LOG2_SCALE * 65536) * LEVELS_PER_OCTAVE + 32768, 16), 0, LEVELS - 1);
}

/* The inputs of value (y, x) of grid g into a (x 2^16); whether any is not 0. */
static int inputs(const Arm *arm, int64_t g, int64_t y, int64_t x, int64_t *a) {
    const int64_t *lay = arm->layout + 3 * g;
    int64_t row = lay[1] + 2 * PAD, base = lay[2] + (y + PAD) * row + x + PAD;
    int any = 0;
    for (int k = 0; k < arm->neighbours; k++) {
        int64_t v = arm->buffer[base + arm->offsets[2 * k] * row + arm->offsets[2 * k + 1]];
        a[k] = v * 65536;
        any |= v != 0;
    }
    if (arm->coarser) {
        int64_t v = 0;
        if (g > 0) {
            const int64_t *prev = lay - 3;
            v = arm->buffer[prev[2] + (y * prev[0] / lay[0] + PAD) * (prev[1] + 2 * PAD) + x * prev[1] / lay[1] + PAD];
        }
        a[arm->neighbours] = v * 65536;
        any |= v != 0;
    }
    return any;
}

/* The table row of value (y, x) of grid g and its mean's integer part (floor of the quarters / 4). */
static const int64_t *predict(const Arm *arm, const int64_t zero[2], int64_t g, int64_t y, int64_t x, int64_t *a,
                              int64_t *b, int64_t *whole) {
    int64_t mean = zero[0], level = zero[1];
    if (inputs(arm, g, y, x, a)) /* else the MLP of all zeros, computed once */
        mlp(arm, a, b, &mean, &level);
    *whole = floor_shift(mean, 2);
    return arm->cum + (level * FRAC + (mean & 3)) * TABLE_ROW;
}

/* The index i with row[i] <= slot < row[i + 1], searched outwards from residual 0 (where most values are, so
 * that the search touches few cache lines), then by bisection. row[0] = 0 <= slot < row[RESIDUALS] = 2^24. */
static int64_t find(const int64_t *row, int64_t slot) {
    int64_t lo = 2 * MAX_LATENT, hi, step = 1;
    if (row[lo] <= slot) {
        hi = lo + 1;
        while (row[hi] <= slot) {
            lo = hi;
            step *= 2;
            hi = lo + step < RESIDUALS ? lo + step : RESIDUALS;
        }
    } else {
        hi = lo;
        lo = hi - 1;
        while (row[lo] > slot) {
            hi = lo;
            step *= 2;
            lo = hi - step > 0 ? hi - step : 0;
        }
    }
    while (hi - lo > 1) {
        int64_t mid = (lo + hi) >> 1;
        if (row[mid] <= slot)
            lo = mid;
        else
            hi = mid;
    }
    return lo;
}

static int64_t values(const Arm *arm) {
    int64_t n = 0;
    for (int g = 0; g < arm->grids; g++)
        n += arm->layout[3 * g] * arm->layout[3 * g + 1];
    return n;
}

/* Decodes the grids into the buffer; a status code. */
static int decode(const Arm *arm, int64_t *buffer, const unsigned char *words, int64_t n_words) {
    uint64_t state;
    int64_t pos = 2, a[MAX_WIDTH], b[MAX_WIDTH], zero[2];
    const uint64_t mask = ((uint64_t)1 << PRECISION) - 1;
#define WORD(i) ((uint64_t)words[4 * (i)] | (uint64_t)words[4 * (i) + 1] << 8 | (uint64_t)words[4 * (i) + 2] << 16 \
                 | (uint64_t)words[4 * (i) + 3] << 24)
    if (n_words < 2 || WORD(0) >= RANS_LOW)
        return BAD_STATE;
    state = WORD(0) << 32 | WORD(1);
    if (state < RANS_LOW)
        return BAD_STATE;
    for (int i = 0; i < MAX_WIDTH; i++)
        a[i] = 0;
    mlp(arm, a, b, &zero[0], &zero[1]);
    for (int64_t g = 0; g < arm->grids; g++) {
        int64_t h = arm->layout[3 * g], w = arm->layout[3 * g + 1], o = arm->layout[3 * g + 2];
        for (int64_t y = 0; y < h; y++) {
            int64_t *out = buffer + o + (y + PAD) * (w + 2 * PAD) + PAD;
            for (int64_t x = 0; x < w; x++) {
                int64_t whole;
                const int64_t *row = predict(arm, zero, g, y, x, a, b, &whole);
                int64_t slot = (int64_t)(state & mask), s = find(row, slot), q;
                state = (uint64_t)(row[s + 1] - row[s]) * (state >> PRECISION) + (uint64_t)(slot - row[s]);
                if (state < RANS_LOW) {
                    if (pos >= n_words)
                        return OUT_OF_WORDS;
                    state = state << 32 | WORD(pos);
                    pos++;
                }
                q = s - 2 * MAX_LATENT + whole;
                if (q < -MAX_LATENT || q > MAX_LATENT)
                    return OUT_OF_RANGE;
                out[x] = q;
            }
        }
    }
#undef WORD
    return state == RANS_LOW && pos == n_words ? OK : BAD_STATE;
}

/* Encodes the buffer's grids: the words, in stream order, into out (room for values + 2); their count, or -1 if
 * out of memory. */
static int64_t encode(const Arm *arm, uint32_t *out) {
    int64_t n = values(arm), i = 0, m = 0, a[MAX_WIDTH], b[MAX_WIDTH], zero[2];
    uint32_t *start = malloc(sizeof(uint32_t) * (n ? n : 1)), *freq = malloc(sizeof(uint32_t) * (n ? n : 1));
    uint64_t state = RANS_LOW;
    if (!start || !freq) {
        free(start);
        free(freq);
        return -1;
    }
    for (int k = 0; k < MAX_WIDTH; k++)
        a[k] = 0;
    mlp(arm, a, b, &zero[0], &zero[1]);
    for (int64_t g = 0; g < arm->grids; g++) {
        int64_t h = arm->layout[3 * g], w = arm->layout[3 * g + 1], o = arm->layout[3 * g + 2];
        for (int64_t y = 0; y < h; y++)
            for (int64_t x = 0; x < w; x++) {
                int64_t whole;
                const int64_t *row = predict(arm, zero, g, y, x, a, b, &whole);
                int64_t s = arm->buffer[o + (y + PAD) * (w + 2 * PAD) + x + PAD] - whole + 2 * MAX_LATENT;
                start[i] = (uint32_t)row[s];
                freq[i] = (uint32_t)(row[s + 1] - row[s]);
                i++;
            }
    }
    for (i = n - 1; i >= 0; i--) { /* backwards; the words are written from the end of out */
        if (state >= ((RANS_LOW >> PRECISION) << 32) * freq[i]) {
            out[n + 1 - m++] = (uint32_t)state;
            state >>= 32;
        }
        state = ((state / freq[i]) << PRECISION) + state % freq[i] + start[i];
    }
    out[n + 1 - m++] = (uint32_t)state;
    out[n + 1 - m++] = (uint32_t)(state >> 32);
    free(start);
    free(freq);
    memmove(out, out + n + 2 - m, sizeof(uint32_t) * m);
    return m;
}

/* --- Python side ---------------------------------------------------------------------------------------------- */

static int bad(const char *what) {
    PyErr_Format(PyExc_ValueError, "_armint: %s", what);
    return 0;
}

/* Fills arm from the call's buffers, checking every size and index the loops rely on; 0 with ValueError set if
 * any is wrong. The values themselves (within the format's bounds) are armint.fixed_point's to check. */
/* The buffers of one call of encode or decode. */
typedef struct {
    Py_buffer buffer, layout, offsets, dims, weights, biases, cum;
    int coarser;
} Call;

static void release(Call *c) {
    PyBuffer_Release(&c->buffer);
    PyBuffer_Release(&c->layout);
    PyBuffer_Release(&c->offsets);
    PyBuffer_Release(&c->dims);
    PyBuffer_Release(&c->weights);
    PyBuffer_Release(&c->biases);
    PyBuffer_Release(&c->cum);
}

static int setup(Arm *arm, Call *c) {
    Py_buffer *buffer = &c->buffer, *layout = &c->layout, *offsets = &c->offsets, *dims = &c->dims,
              *weights = &c->weights, *biases = &c->biases, *cum = &c->cum;
    int coarser = c->coarser;
    const int64_t *d = dims->buf;
    int64_t n_weights = 0, n_biases = 0, n_buffer = buffer->len / 8;
    if (buffer->len % 8 || layout->len % 24 || offsets->len % 16 || dims->len % 8 || weights->len % 8
        || biases->len % 8)
        return bad("every buffer must hold int64 values");
    arm->layers = (int)(dims->len / 8) - 1;
    arm->neighbours = (int)(offsets->len / 16);
    arm->coarser = coarser != 0;
    arm->grids = (int)(layout->len / 24);
    if (arm->layers < 1 || arm->layers > MAX_LAYERS || d[arm->layers] != OUTPUTS)
        return bad("the ARM needs 1 to 4 layers, the last with 2 outputs");
    if (arm->neighbours > 24 || d[0] != arm->neighbours + arm->coarser || d[0] < 1)
        return bad("the ARM's inputs are its neighbours and the coarser grid's value");
    for (int j = 0; j <= arm->layers; j++) {
        if (d[j] < 1 || d[j] > MAX_WIDTH)
            return bad("an ARM layer has 1 to 32 inputs and outputs");
        arm->dims[j] = d[j];
        if (j) {
            n_weights += d[j] * d[j - 1];
            n_biases += d[j];
        }
    }
    if (weights->len / 8 != n_weights || biases->len / 8 != n_biases)
        return bad("the ARM's weights or biases do not match its layers");
    if (cum->len != (Py_ssize_t)8 * LEVELS * FRAC * TABLE_ROW)
        return bad("the tables have the wrong size");
    arm->offsets = offsets->buf;
    for (int k = 0; k < arm->neighbours; k++) {
        int64_t dy = arm->offsets[2 * k], dx = arm->offsets[2 * k + 1];
        if (dy < -PAD || dy > 0 || dx < -PAD || dx > PAD || (dy == 0 && dx >= 0))
            return bad("a neighbour is not causal within the padding");
    }
    arm->layout = layout->buf;
    for (int g = 0; g < arm->grids; g++) {
        int64_t h = arm->layout[3 * g], w = arm->layout[3 * g + 1], o = arm->layout[3 * g + 2];
        if (h < 1 || w < 1 || h > (1 << 20) || w > (1 << 20) || o < 0 || o > n_buffer
            || (h + PAD) * (w + 2 * PAD) > n_buffer - o)
            return bad("a grid does not lie within the buffer");
    }
    arm->weights = weights->buf;
    arm->biases = biases->buf;
    arm->buffer = buffer->buf;
    arm->cum = cum->buf;
    return 1;
}

static PyObject *py_decode(PyObject *self, PyObject *args) {
    Py_buffer words;
    Call c;
    Arm arm;
    int status = -1;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*w*y*y*py*y*y*y*", &words, &c.buffer, &c.layout, &c.offsets, &c.coarser, &c.dims,
                          &c.weights, &c.biases, &c.cum))
        return NULL;
    if (words.len % 4)
        bad("the words must be whole u32");
    else if (setup(&arm, &c)) {
        Py_BEGIN_ALLOW_THREADS
        status = decode(&arm, c.buffer.buf, words.buf, words.len / 4);
        Py_END_ALLOW_THREADS
    }
    PyBuffer_Release(&words);
    release(&c);
    return status < 0 ? NULL : PyLong_FromLong(status);
}

static PyObject *py_encode(PyObject *self, PyObject *args) {
    Call c;
    Arm arm;
    int64_t m = -2;
    uint32_t *out = NULL;
    PyObject *result = NULL;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*y*y*py*y*y*y*", &c.buffer, &c.layout, &c.offsets, &c.coarser, &c.dims, &c.weights,
                          &c.biases, &c.cum))
        return NULL;
    if (setup(&arm, &c)) {
        out = malloc(sizeof(uint32_t) * (values(&arm) + 2));
        if (out) {
            Py_BEGIN_ALLOW_THREADS
            m = encode(&arm, out);
            Py_END_ALLOW_THREADS
        }
        if (m < 0)
            PyErr_NoMemory();
    }
    if (m >= 0 && (result = PyBytes_FromStringAndSize(NULL, 4 * m)) != NULL) {
        unsigned char *p = (unsigned char *)PyBytes_AS_STRING(result);
        for (int64_t i = 0; i < m; i++) /* little-endian u32, whatever the machine's order */
            for (int k = 0; k < 4; k++)
                p[4 * i + k] = (unsigned char)(out[i] >> (8 * k));
    }
    free(out);
    release(&c);
    return result;
}

static PyObject *py_tables(PyObject *self, PyObject *args) {
    Py_buffer ratios, cum;
    int64_t n_levels, *g = NULL, *w = NULL;
    const int64_t n_g = FRAC * (2 * MAX_LATENT + 1) + 1;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*w*", &ratios, &cum))
        return NULL;
    n_levels = ratios.len / 8;
    if (ratios.len % 8 || cum.len != 8 * n_levels * FRAC * TABLE_ROW) {
        bad("the tables need one int64 ratio per level and their (levels, 4, residuals + 1) int64 buffer");
        goto done;
    }
    g = malloc(sizeof(int64_t) * n_g);
    w = malloc(sizeof(int64_t) * RESIDUALS);
    if (!g || !w) {
        PyErr_NoMemory();
        goto done;
    }
    for (int64_t lv = 0; lv < n_levels; lv++) {
        int64_t ratio = ((const int64_t *)ratios.buf)[lv];
        if (ratio < 1 || ratio >= 65536) {
            bad("a ratio lies outside 1 .. 65535");
            goto done;
        }
        g[0] = (int64_t)1 << 32;
        for (int64_t j = 1; j < n_g; j++) {
            int64_t next = (g[j - 1] * ratio) >> 16;
            g[j] = next > 1 ? next : 1;
        }
        for (int f = 0; f < FRAC; f++) {
            int64_t total = 0, best = 0, left, *row = (int64_t *)cum.buf + (lv * FRAC + f) * TABLE_ROW;
            const int64_t spare = ((int64_t)1 << PRECISION) - RESIDUALS;
            for (int64_t i = 0; i < RESIDUALS; i++) {
                int64_t d = FRAC * (i - 2 * MAX_LATENT) - f;
                w[i] = g[d < 0 ? -d : d];
                total += w[i];
                if (w[i] > w[best])
                    best = i;
            }
            row[0] = 0;
            for (int64_t i = 0; i < RESIDUALS; i++)
                row[i + 1] = row[i] + 1 + (w[i] * spare) / total;
            left = ((int64_t)1 << PRECISION) - row[RESIDUALS];
            for (int64_t i = best + 1; i <= RESIDUALS; i++)
                row[i] += left;
        }
    }
done:
    free(g);
    free(w);
    PyBuffer_Release(&ratios);
    PyBuffer_Release(&cum);
    if (PyErr_Occurred())
        return NULL;
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"tables", py_tables, METH_VARARGS,
     "tables(ratios, cum): fill cum (levels, 4, 2046) int64 with the cumulative frequencies of each level's ratio."},
    {"encode", py_encode, METH_VARARGS,
     "encode(buffer, layout, offsets, coarser, dims, weights, biases, cum) -> bytes: the ARM stream of the grids."},
    {"decode", py_decode, METH_VARARGS,
     "decode(words, buffer, layout, offsets, coarser, dims, weights, biases, cum) -> status: the grids into buffer."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_armint", "The ARM's integer loops (armint.py).", -1,
                                    methods};

PyMODINIT_FUNC PyInit__armint(void) { return PyModule_Create(&module); }
