/* catalog_data.S — embeds catalog/models.json, the model catalog, into the binary as
 * aigw_catalog_json (NUL-terminated), so `aigw serve` needs no data file at run time. The
 * assembler's .incbin reads it at build time; the Makefile lists it as a dependency. */
    .section .rodata
    .global aigw_catalog_json
    .type aigw_catalog_json, @object
aigw_catalog_json:
    .incbin "catalog/models.json"
    .byte 0
    .size aigw_catalog_json, . - aigw_catalog_json
    .section .note.GNU-stack, "", @progbits
