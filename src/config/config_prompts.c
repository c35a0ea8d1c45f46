/* config_prompts.c — the config file's `prompts:` section: where prompt templates and partials
 * kept in files are (docs/prompts.md, "Prompt files").
 *
 *   prompts:
 *     dir: prompts         # beside the config when relative: *.yaml, *.yml, *.md
 *     max_files: 1000      # optional bound on the files read (default 1000)
 *
 * Its own file because config.c is at its size limit; it runs on the same table machinery
 * (config_read.h). Only the shape is checked here: the directory is read by the load sequence
 * (gateway.c → src/prompts/prompt_files.c), which config cannot include, so a reload (SIGHUP,
 * POST /admin/config/reload) reads the files again with the rest of the config. */
#include <stddef.h>
#include <stdlib.h>

#include "config/config.h"
#include "config/config_read.h"

#define PRM(member) offsetof(prompts_settings, member)

static const field prompts_table[] = {
    {"dir", FIELD_STRING, PRM(dir), 0, 0, NULL, NULL},
    {"max_files", FIELD_INT, PRM(max_files), 1, 100000, NULL, NULL},
    {NULL, 0, 0, 0, 0, NULL, NULL},
};

bool config__parse_prompts(loader *ld, yaml_node_t *node, void *target)
{
    aigw_config *cfg = target;
    prompts_settings *p = &cfg->prompts;
    p->line = (int)node->start_mark.line + 1;
    if (node->type != YAML_MAPPING_NODE)
        return config__fail_at(ld, node, "'prompts' must be a mapping such as {dir: prompts}");
    if (!config__apply_section(ld, node, "prompts", prompts_table, p)) return false;
    if (!p->dir || !p->dir[0])
        return config__fail_at(ld, node, "prompts needs dir: the directory of prompt files");
    if (!p->max_files) p->max_files = 1000;
    return true;
}

void config__prompts_free(prompts_settings *p)
{
    free(p->dir);
    if (p->set && p->set_free) p->set_free(p->set);
}
