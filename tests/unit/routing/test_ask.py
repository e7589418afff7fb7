"""The ask inside a message an application built: retrieved documents are set apart, a pasted one is not."""

from __future__ import annotations

from shared.routing.ask import split_ask

QUESTION = "Why did churn rise in March?"
DOCS = ["Q1 churn was 2.1% in January, 2.3% in February and 3.4% in March.", "Pricing changed on 1 March."]


def test_a_plain_message_is_all_ask() -> None:
    assert split_ask("Compare A and B: which scales better?") == ("Compare A and B: which scales better?", "")


def test_a_document_the_user_pasted_is_part_of_the_ask() -> None:
    pasted = "Summarize this email.\n\nFrom: Laura <l@x.com>\nSubject: Invoice\n\nPlease pay by Friday."
    assert split_ask(pasted)[0] == pasted


def test_documents_in_tags_are_set_apart() -> None:
    docs = "\n".join(f'<document index="{i}"><document_content>{d}</document_content></document>'
                     for i, d in enumerate(DOCS, 1))
    ask, context = split_ask(f"<documents>\n{docs}\n</documents>\n\n{QUESTION}")
    assert ask == QUESTION
    assert DOCS[0] in context and DOCS[1] in context


def test_llamaindex_default_template_keeps_only_the_query() -> None:
    sent = ("Context information is below.\n---------------------\n" + "\n\n".join(DOCS) + "\n---------------------\n"
            "Given the context information and not prior knowledge, answer the query.\n"
            f"Query: {QUESTION}\nAnswer: ")
    ask, context = split_ask(sent)
    assert ask == QUESTION
    assert DOCS[0] in context and "prior knowledge" in context


def test_langchain_rag_prompt_keeps_only_the_question_even_when_documents_hold_questions() -> None:
    sent = ("You are an assistant for question-answering tasks. Use the following pieces of retrieved context to "
            "answer the question. If you don't know the answer, just say that you don't know.\n"
            f"Question: {QUESTION} \nContext: FAQ\nQuestion: How do I reset my password?\n{DOCS[0]} \nAnswer:")
    assert split_ask(sent)[0] == QUESTION


def test_markup_that_is_not_a_document_stays_in_the_ask() -> None:
    html = "Why is this <b>bold</b> text not centered? <div class='x'>hi</div>"
    assert split_ask(html)[0] == html


def test_documents_between_dashed_lines_are_set_apart_without_a_label() -> None:
    sent = "Use these notes:\n--------------------\n" + "\n".join(DOCS) + "\n--------------------\n" + QUESTION
    ask, context = split_ask(sent)
    assert DOCS[0] not in ask and DOCS[0] in context
    assert ask.endswith(QUESTION)
