/* pyfmt.c - format a double as Python's repr() does, so messages match PyTorch's
 * ("Invalid learning rate: -0.1", "1e-08", "0.0001", "1e+16"). */
#include <stdio.h>
#include <stdlib.h>
#include <math.h>
#include "internal.h"

const char *nb__pyfloat(double v, int k) {
    static _Thread_local char bufs[4][40];
    char *b = bufs[k & 3];
    if (isnan(v)) return strcpy(b, "nan");
    if (isinf(v)) return strcpy(b, v > 0 ? "inf" : "-inf");
    char tmp[40];
    int p = 1;
    for (; p < 17; p++) { /* shortest digits that read back to v */
        snprintf(tmp, sizeof tmp, "%.*e", p - 1, v);
        if (strtod(tmp, NULL) == v) break;
    }
    snprintf(tmp, sizeof tmp, "%.*e", p - 1, v);
    int exp10 = atoi(strchr(tmp, 'e') + 1);
    if (exp10 < -4 || exp10 >= 16) { /* 1e-05, 1.5e+16: mantissa, then e, sign, 2+ digits */
        char mant[24];
        size_t ml = (size_t)(strchr(tmp, 'e') - tmp);
        memcpy(mant, tmp, ml < sizeof mant ? ml : sizeof mant - 1);
        mant[ml < sizeof mant ? ml : sizeof mant - 1] = '\0';
        snprintf(b, 40, "%se%c%02d", mant, exp10 < 0 ? '-' : '+', abs(exp10) % 1000);
        return b;
    }
    int decimals = p - 1 - exp10;
    snprintf(b, 40, "%.*f", decimals > 0 ? decimals : 0, v);
    if (decimals <= 0) strcat(b, ".0");
    return b;
}

const char *nb__pyfloat32(float v, int k) {
    char tmp[32];
    for (int digits = 1; digits <= 9; digits++) { /* shortest that reads back as the float */
        snprintf(tmp, sizeof tmp, "%.*g", digits, (double)v);
        if ((float)strtod(tmp, NULL) == v) break;
    }
    return nb__pyfloat(strtod(tmp, NULL), k);
}
