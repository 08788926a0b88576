namespace KvNotebooks.Training;

/// <summary>What a parameter is, which decides its default AdamW group (no weight decay on norms and biases).</summary>
public enum ParamKind { Embedding, Weight, Norm, Bias, Mask }

/// <summary>
/// One trainable tensor: its values, a same-shaped gradient buffer, and whether it is frozen
/// (frozen: no gradient is computed where avoidable, and the optimizer skips it).
/// <see cref="Group"/> indexes the optimizer's parameter groups.
/// </summary>
public sealed class Parameter
{
    public Parameter(string name, float[] value, ParamKind kind, float[]? grad = null)
    {
        Name = name;
        Value = value;
        Kind = kind;
        Grad = grad ?? new float[value.Length];
        if (Grad.Length != value.Length) throw new ArgumentException($"{name}: gradient length {Grad.Length} ≠ value length {value.Length}");
        Group = kind is ParamKind.Norm or ParamKind.Bias ? AdamW.NoDecayGroup : AdamW.DecayGroup;
    }

    /// <summary>Hugging Face state-dict name, e.g. model.layers.0.self_attn.q_proj.weight.</summary>
    public string Name { get; }
    public float[] Value { get; }
    public float[] Grad { get; }
    public ParamKind Kind { get; }
    public bool Frozen { get; set; }
    /// <summary>Index into the optimizer's groups (default: 0 = decay, 1 = no decay).</summary>
    public int Group { get; set; }

    public override string ToString() => $"{Name} [{Value.Length}]{(Frozen ? " frozen" : "")}";
}
