# Fails when docs/configuration.md does not contain `allowd --help-markdown`.
execute_process(COMMAND ${ALLOWD} --help-markdown OUTPUT_VARIABLE table RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "allowd --help-markdown failed")
endif()
file(READ ${DOC} doc)
string(FIND "${doc}" "${table}" pos)
if(pos EQUAL -1)
  message(FATAL_ERROR "docs/configuration.md is out of date; paste the output of "
                      "`allowd --help-markdown` into it (scripts/gen-config-doc.sh does):\n${table}")
endif()
