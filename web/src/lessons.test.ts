import { describe, expect, it } from "vitest";
import { lessonActions, lessonChanges, lessonForm } from "./lessons";

describe("lessonActions", () => {
  it("follows the lesson's status and ownership", () => {
    expect(lessonActions({ status: "generating" }, true)).toEqual({ edit: false, duplicate: false, publish: false, unpublish: false, remove: true });
    expect(lessonActions({ status: "ready" }, true)).toEqual({ edit: true, duplicate: true, publish: true, unpublish: false, remove: true });
    expect(lessonActions({ status: "published" }, true)).toEqual({ edit: true, duplicate: true, publish: false, unpublish: true, remove: true });
    expect(lessonActions({ status: "failed" }, true)).toMatchObject({ edit: true, duplicate: false, publish: false });
    expect(lessonActions({ status: "published" }, false)).toEqual({ edit: false, duplicate: true, publish: false, unpublish: false, remove: false });
  });
});

describe("lessonChanges", () => {
  const lesson = { topic: "Tides", content_type: "quiz", difficulty: 4, body: "Q1" };
  it("keeps only the changed fields, the topic trimmed", () => {
    expect(lessonChanges(lesson, { ...lessonForm(lesson), topic: " Tides and moons ", difficulty: 5 })).toEqual({
      topic: "Tides and moons",
      difficulty: 5,
    });
  });
  it("is null when nothing changed", () => {
    expect(lessonChanges(lesson, { ...lessonForm(lesson), topic: "Tides " })).toBeNull();
  });
});
