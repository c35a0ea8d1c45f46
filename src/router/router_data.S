/* router_data.S — embeds router/lr.model, the learned router's trained model, into the binary as
 * aigw_router_model_text (NUL-terminated), so a `router:` section without model_file needs no
 * data file at run time (as catalog_data.S does for the catalog). The Makefile lists the model
 * as a dependency; `make router-train DATA=…` writes it. */
    .section .rodata
    .global aigw_router_model_text
    .type aigw_router_model_text, @object
aigw_router_model_text:
    .incbin "router/lr.model"
    .byte 0
    .size aigw_router_model_text, . - aigw_router_model_text
    .section .note.GNU-stack, "", @progbits
