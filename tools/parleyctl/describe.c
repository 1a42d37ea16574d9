/* describe.c — list and describe; see describe.h. */
#include "describe.h"

#include <stdlib.h>
#include <string.h>

static void indent(FILE *out, int depth)
{
    for (int i = 0; i < depth; i++)
        fputs("  ", out);
}

static void print_type(FILE *out, const pctl_field_t *f)
{
    const char *scalar = pctl_type_name(f->type);
    if (scalar && f->type != PCTL_TYPE_GROUP)
        fputs(scalar, out);
    else
        fprintf(out, ".%s", f->type_name ? f->type_name : "?");
}

static void print_field(FILE *out, const pctl_field_t *f, int depth, bool in_oneof)
{
    indent(out, depth);
    if (pctl_field_is_map(f)) {
        fputs("map<", out);
        print_type(out, pctl_msg_field_by_number(f->message, 1));
        fputs(", ", out);
        print_type(out, pctl_msg_field_by_number(f->message, 2));
        fprintf(out, "> %s = %d;\n", f->name, f->number);
        return;
    }
    bool proto2 = f->parent->file->syntax == PCTL_SYNTAX_PROTO2;
    if (f->label == PCTL_LABEL_REPEATED)
        fputs("repeated ", out);
    else if (f->label == PCTL_LABEL_REQUIRED)
        fputs("required ", out);
    else if (f->is_proto3_optional || (proto2 && !in_oneof))
        fputs("optional ", out);
    print_type(out, f);
    fprintf(out, " %s = %d", f->name, f->number);
    if (f->packed_option_set)
        fprintf(out, " [packed = %s]", f->packed_option ? "true" : "false");
    fputs(";\n", out);
}

static void print_enum(FILE *out, const pctl_enum_t *e, int depth)
{
    indent(out, depth);
    fprintf(out, "enum %s {\n", e->name);
    for (size_t i = 0; i < e->value_count; i++) {
        indent(out, depth + 1);
        fprintf(out, "%s = %d;\n", e->values[i].name, e->values[i].number);
    }
    indent(out, depth);
    fputs("}\n", out);
}

static void print_message(FILE *out, const pctl_msg_t *m, int depth)
{
    indent(out, depth);
    fprintf(out, "message %s {\n", m->name);
    for (size_t i = 0; i < m->field_count; i++) {
        const pctl_field_t *f = &m->fields[i];
        int32_t o = f->oneof_index;
        if (o < 0 || m->oneofs[o].is_synthetic) {
            print_field(out, f, depth + 1, false);
            continue;
        }
        /* a real oneof prints whole where its first member is declared */
        bool first = true;
        for (size_t k = 0; k < i; k++)
            if (m->fields[k].oneof_index == o)
                first = false;
        if (!first)
            continue;
        indent(out, depth + 1);
        fprintf(out, "oneof %s {\n", m->oneofs[o].name);
        for (size_t k = i; k < m->field_count; k++)
            if (m->fields[k].oneof_index == o)
                print_field(out, &m->fields[k], depth + 2, true);
        indent(out, depth + 1);
        fputs("}\n", out);
    }
    for (size_t i = 0; i < m->nested_count; i++)
        if (!m->nested[i]->is_map_entry)
            print_message(out, m->nested[i], depth + 1);
    for (size_t i = 0; i < m->enum_count; i++)
        print_enum(out, m->enums[i], depth + 1);
    indent(out, depth);
    fputs("}\n", out);
}

static void print_method(FILE *out, const pctl_method_t *md, int depth)
{
    indent(out, depth);
    fprintf(out, "rpc %s ( %s.%s ) returns ( %s.%s );\n", md->name, md->client_streaming ? "stream " : "",
            md->input_name, md->server_streaming ? "stream " : "", md->output_name);
}

static void print_service(FILE *out, const pctl_service_t *s)
{
    fprintf(out, "%s is a service:\nservice %s {\n", s->full_name, s->name);
    for (size_t i = 0; i < s->method_count; i++)
        print_method(out, &s->methods[i], 1);
    fputs("}\n", out);
}

int pctl_list(pctl_schema_t *s, const char *service, FILE *out, pctl_err_t *err)
{
    if (!service) {
        char **names;
        size_t n;
        if (pctl_schema_list_services(s, &names, &n, err) != 0)
            return -1;
        for (size_t i = 0; i < n; i++)
            fprintf(out, "%s\n", names[i]);
        pctl_strv_free(names, n);
        return 0;
    }
    pctl_symbol_t sym;
    if (pctl_schema_find(s, service, &sym, err) != 0)
        return -1;
    if (sym.kind != PCTL_SYM_SERVICE)
        return pctl_fail(err, "%s is not a service", service);
    const pctl_service_t *svc = sym.u.service;
    const char **names = calloc(svc->method_count ? svc->method_count : 1, sizeof(*names));
    if (!names)
        return pctl_fail(err, "out of memory");
    /* sorted, as grpcurl lists them */
    for (size_t i = 0; i < svc->method_count; i++) {
        size_t k = i;
        while (k > 0 && strcmp(names[k - 1], svc->methods[i].full_name) > 0) {
            names[k] = names[k - 1];
            k--;
        }
        names[k] = svc->methods[i].full_name;
    }
    for (size_t i = 0; i < svc->method_count; i++)
        fprintf(out, "%s\n", names[i]);
    free(names);
    return 0;
}

int pctl_describe(pctl_schema_t *s, const char *symbol, FILE *out, pctl_err_t *err)
{
    pctl_symbol_t sym;
    if (!symbol) {
        char **names;
        size_t n;
        if (pctl_schema_list_services(s, &names, &n, err) != 0)
            return -1;
        int rc = 0;
        for (size_t i = 0; i < n && rc == 0; i++) {
            rc = pctl_schema_find(s, names[i], &sym, err);
            if (rc == 0 && sym.kind == PCTL_SYM_SERVICE)
                print_service(out, sym.u.service);
        }
        pctl_strv_free(names, n);
        return rc;
    }
    if (symbol[0] == '.')
        symbol++;
    /* "pkg.Svc/Method" names a method too */
    char *dotted = strdup(symbol);
    if (!dotted)
        return pctl_fail(err, "out of memory");
    char *slash = strchr(dotted, '/');
    if (slash)
        *slash = '.';
    int rc = pctl_schema_find(s, dotted, &sym, err);
    if (rc == 0) {
        switch (sym.kind) {
        case PCTL_SYM_SERVICE: print_service(out, sym.u.service); break;
        case PCTL_SYM_METHOD:
            fprintf(out, "%s is a method:\n", sym.u.method->full_name);
            print_method(out, sym.u.method, 0);
            break;
        case PCTL_SYM_MESSAGE:
            fprintf(out, "%s is a message:\n", sym.u.message->full_name);
            print_message(out, sym.u.message, 0);
            break;
        case PCTL_SYM_ENUM:
            fprintf(out, "%s is an enum:\n", sym.u.enumt->full_name);
            print_enum(out, sym.u.enumt, 0);
            break;
        case PCTL_SYM_FIELD:
            fprintf(out, "%s is a field:\n", dotted);
            print_field(out, sym.u.field, 0, false);
            break;
        }
    }
    free(dotted);
    return rc;
}
