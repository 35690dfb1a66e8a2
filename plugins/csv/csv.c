/* The csv plugin: require('csv') gives recipes RFC 4180 csv.parse(text, opts) and
 * csv.format(rows, opts). The parser and formatter are pure C (csv_parse.c); the options and
 * the shape of rows are handled by the JS below, so the C functions take plain arguments. */
#include "autorun/plugin.h"
#include "csv_parse.h"

#include <string.h>

/* The API's allocator; known only once autorun_plugin_init() ran, so set in open(). */
static struct csv_mem plugin_mem;

/* One-character delimiter from the JS side. */
static int arg_delimiter(struct ar_js_call *call, int i, struct csv_options *o)
{
    const char *d;
    size_t n;
    int rc = ar_js_arg_string(call, i, &d, &n);
    if (rc != 0) {
        return rc;
    }
    if (n != 1 || d[0] == '"' || d[0] == '\r' || d[0] == '\n') {
        return ar_js_throw(call, "TypeError",
                           "csv: delimiter must be one character, not a quote or line break");
    }
    o->delimiter = d[0];
    o->quote = '"';
    return 0;
}

/* parse(text, delimiter, header) -> rows as arrays, or objects keyed by the header row. */
static int csv_js_parse(struct ar_js_call *call)
{
    const char *text;
    size_t len;
    int header;
    struct csv_options o;
    int rc;
    if ((rc = ar_js_arg_string(call, 0, &text, &len)) != 0 ||
        (rc = arg_delimiter(call, 1, &o)) != 0 || (rc = ar_js_arg_bool(call, 2, &header)) != 0) {
        return rc;
    }
    struct csv_table t;
    char err[256];
    rc = csv_parse(text, len, &o, &plugin_mem, &t, err, sizeof(err));
    if (rc != 0) {
        return ar_js_throwf(call, "CsvError", "csv.parse: %s", err);
    }
    struct csv_buf json = {.mem = &plugin_mem};
    rc = csv_table_to_json(&t, header, &json);
    csv_table_free(&t, &plugin_mem);
    if (rc == 0) {
        rc = ar_js_return_json(call, json.data);
    }
    csv_buf_free(&json);
    return rc;
}

/* format(rows: arrays of strings, delimiter, eol, quoteAll) -> text. */
static int csv_js_format(struct ar_js_call *call)
{
    char *rows = NULL;
    const char *eol;
    size_t eol_len;
    int quote_all;
    struct csv_options o;
    int rc;
    if ((rc = arg_delimiter(call, 1, &o)) != 0 ||
        (rc = ar_js_arg_string(call, 2, &eol, &eol_len)) != 0 ||
        (rc = ar_js_arg_bool(call, 3, &quote_all)) != 0 ||
        (rc = ar_js_arg_json(call, 0, &rows)) != 0) {
        return rc;
    }
    struct csv_buf out = {.mem = &plugin_mem};
    char err[256];
    /* eol comes from JS as "\r\n" or "\n"; copy it so it is NUL-terminated for sure. */
    char eol_copy[8];
    if (eol_len >= sizeof(eol_copy)) {
        ar_plugin_free(rows);
        return ar_js_throw(call, "TypeError", "csv.format: eol must be \"\\r\\n\" or \"\\n\"");
    }
    memcpy(eol_copy, eol, eol_len);
    eol_copy[eol_len] = '\0';
    rc = csv_format_json(rows, &o, eol_copy, quote_all, &out, err, sizeof(err));
    ar_plugin_free(rows);
    if (rc != 0) {
        csv_buf_free(&out);
        return ar_js_throwf(call, "CsvError", "csv.format: %s", err);
    }
    rc = ar_js_return_string(call, out.data ? out.data : "", out.len);
    csv_buf_free(&out);
    return rc;
}

/* setting(key): plugin.csv.KEY / AUTORUN_PLUGIN_CSV_KEY, or null. */
static int csv_js_setting(struct ar_js_call *call)
{
    const char *key;
    size_t n;
    int rc = ar_js_arg_string(call, 0, &key, &n);
    if (rc != 0) {
        return rc;
    }
    const char *v = ar_plugin_setting(ar_js_host(call), key);
    return v ? ar_js_return_string(call, v, strlen(v)) : ar_js_return_null(call);
}

static const struct ar_js_function csv_functions[] = {
    {"parse", csv_js_parse},
    {"format", csv_js_format},
    {"setting", csv_js_setting},
    {NULL, NULL},
};

/* The friendly API: option objects, defaults, rows as objects. */
static const char csv_js[] =
    "function delimiter(opts) {\n"
    "    var d = opts && opts.delimiter !== undefined ? opts.delimiter\n"
    "                                                 : native.setting('delimiter') || ',';\n"
    "    if (typeof d !== 'string' || d.length !== 1) {\n"
    "        throw new TypeError('csv: delimiter must be a single character');\n"
    "    }\n"
    "    return d;\n"
    "}\n"
    "function cell(v) {\n"
    "    if (v === null || v === undefined) { return ''; }\n"
    "    if (v instanceof Date) { return v.toISOString(); }\n"
    "    if (typeof v === 'object') { return JSON.stringify(v); }\n"
    "    return String(v);\n"
    "}\n"
    "exports.parse = function parse(text, opts) {\n"
    "    if (typeof text !== 'string') {\n"
    "        throw new TypeError('csv.parse(text, opts): text must be a string');\n"
    "    }\n"
    "    return native.parse(text, delimiter(opts), !!(opts && opts.header));\n"
    "};\n"
    "exports.format = function format(rows, opts) {\n"
    "    if (!Array.isArray(rows)) {\n"
    "        throw new TypeError('csv.format(rows, opts): rows must be an array');\n"
    "    }\n"
    "    var columns = opts && opts.columns, out = [];\n"
    "    var objects = columns || (rows.length > 0 && rows[0] !== null &&\n"
    "                              typeof rows[0] === 'object' && !Array.isArray(rows[0]));\n"
    "    if (objects) {\n"
    "        if (!columns) {\n"
    "            var seen = {};\n"
    "            columns = [];\n"
    "            rows.forEach(function (r) {\n"
    "                Object.keys(r || {}).forEach(function (k) {\n"
    "                    if (!seen[k]) { seen[k] = true; columns.push(k); }\n"
    "                });\n"
    "            });\n"
    "        }\n"
    "        if (!Array.isArray(columns)) {\n"
    "            throw new TypeError('csv.format: columns must be an array of names');\n"
    "        }\n"
    "        if (!opts || opts.header !== false) { out.push(columns.map(cell)); }\n"
    "        rows.forEach(function (r, i) {\n"
    "            if (r === null || typeof r !== 'object' || Array.isArray(r)) {\n"
    "                throw new TypeError('csv.format: row ' + i + ' is not an object');\n"
    "            }\n"
    "            out.push(columns.map(function (c) { return cell(r[c]); }));\n"
    "        });\n"
    "    } else {\n"
    "        rows.forEach(function (r, i) {\n"
    "            if (!Array.isArray(r)) {\n"
    "                throw new TypeError('csv.format: row ' + i + ' is not an array');\n"
    "            }\n"
    "            out.push(r.map(cell));\n"
    "        });\n"
    "    }\n"
    "    var eol = opts && opts.eol !== undefined ? opts.eol : '\\r\\n';\n"
    "    if (eol !== '\\r\\n' && eol !== '\\n') {\n"
    "        throw new TypeError('csv.format: eol must be \"\\\\r\\\\n\" or \"\\\\n\"');\n"
    "    }\n"
    "    return native.format(out, delimiter(opts), eol, !!(opts && opts.quoteAll));\n"
    "};\n";

static int csv_open(struct ar_plugin_host *host)
{
    plugin_mem.realloc = ar_plugin_realloc;
    plugin_mem.free = ar_plugin_free;
    return ar_plugin_export_module(host, csv_functions, csv_js);
}

const struct ar_plugin csv_plugin = {
    .abi_version = AUTORUN_PLUGIN_ABI,
    .name = "csv",
    .version = AUTORUN_VERSION_STRING,
    .description = "RFC 4180 CSV: csv.parse(text, opts) and csv.format(rows, opts)",
    .open = csv_open,
};

AR_PLUGIN_EXPORT(csv_plugin)
