"""DTR (Documentation Templates and Rules): the payer's Questionnaires, CQL Libraries and value
sets, the `$questionnaire-package` builder, the adaptive `$next-question` engine and the evaluation
of completed QuestionnaireResponses against a topic's documentation requirement.
"""
